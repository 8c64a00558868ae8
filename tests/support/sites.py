"""Site folders for tests: a copy of the demo site with its ``site.toml`` edited."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.paths import SITE

DEMO_SWITCH = "demo_payments = true\n"


def demo_copy(folder: Path, *, demo_payments: bool = True, extra: str = "") -> Path:
    """A copy of the demo site in ``folder``: with or without the demo checkout, ``extra``
    TOML appended to its ``site.toml``."""
    shutil.copytree(SITE, folder)
    toml = folder / "site.toml"
    text = toml.read_text(encoding="utf-8")
    assert DEMO_SWITCH in text
    if not demo_payments:
        text = text.replace(DEMO_SWITCH, "")
    toml.write_text(text + extra, encoding="utf-8")
    return folder
