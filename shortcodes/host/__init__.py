"""The Flask host: serves site pages through a theme, with login, action buttons and webhooks.

``create_app`` (re-exported by the top-level ``server.py``) builds the app; one module per job:
``pages`` (files, front matter, compile cache), ``render`` (context and layout), ``auth``,
``actions``, ``webhooks`` (+ ``hookops``), ``preview``, ``account``, ``seed``.
"""

from __future__ import annotations

from shortcodes.host.app import create_app

__all__ = ["create_app"]
