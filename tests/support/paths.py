"""Where things are: the repository root, the demo site and the spec-case files."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository root (the folder holding ``server.py`` and ``site/``)."""

SITE = ROOT / "site"
"""The demo site."""

FIXTURES = ROOT / "tests" / "fixtures"
"""The readable spec-case files."""
