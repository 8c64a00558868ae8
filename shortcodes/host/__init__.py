"""The Flask host: serves site pages through a theme, with login, action buttons and webhooks.

``create_app`` (re-exported by the top-level ``server.py``) builds the app around the
:class:`Shortcodes` extension (``init_app``); one module per job: ``settings`` (where the site,
instance and database are, for host and CLI), ``pages`` (files, front matter, compile cache),
``render`` (context, layout, the host's own templates), ``auth`` (login, ``login_required``,
``admin_required``), ``actions``, ``webhooks`` (+ ``hookops``), ``preview``, ``account``, ``seed``.
"""

from __future__ import annotations

from shortcodes.host.app import Shortcodes, create_app

__all__ = ["Shortcodes", "create_app"]
