"""shortcodes: WordPress-style shortcodes for membership sites.

The public API (see DESIGN.md)::

    from shortcodes import (Environment, Shortcode, Context, Contact, Tag,
                            ShortcodeSyntaxError, parse_attrs)
"""

from __future__ import annotations

from shortcodes.attrs import parse_attrs
from shortcodes.context import Contact, Context, RequestInfo, SiteInfo, Tag
from shortcodes.environment import Environment
from shortcodes.errors import Problem, ShortcodeError, ShortcodeRenderError, ShortcodeSyntaxError
from shortcodes.registry import Attribute
from shortcodes.runtime import Shortcode, Template

__all__ = [
    "Attribute",
    "Contact",
    "Context",
    "Environment",
    "Problem",
    "RequestInfo",
    "Shortcode",
    "ShortcodeError",
    "ShortcodeRenderError",
    "ShortcodeSyntaxError",
    "SiteInfo",
    "Tag",
    "Template",
    "parse_attrs",
]
