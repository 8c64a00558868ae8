"""Tutorials as sites: the files a tutorial's titled code blocks write, and an app serving them.

A block fenced as ```` ```toml title="site.toml" ```` is part of the file its title names,
relative to the site folder; blocks with the same title are joined in the order the page gives
them, as a reader copying them would. Blocks without a title (shell commands, fragments) are
prose, not files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from flask import Flask
from markdown_it import MarkdownIt

from tests.support.host import app_config, verified_app
from tests.support.paths import ROOT

TUTORIALS = ROOT / "docs" / "tutorials"
_TITLE = re.compile(r'\btitle="([^"]+)"')


def snippets(markdown: str) -> dict[str, str]:
    """The files a tutorial's titled blocks make: relative path -> text."""
    files: dict[str, str] = {}
    for token in MarkdownIt("commonmark").parse(markdown):
        found = _TITLE.search(token.info) if token.type == "fence" else None
        if found:
            path = found.group(1)
            assert not Path(path).is_absolute(), path
            assert ".." not in Path(path).parts, path
            files[path] = files.get(path, "") + token.content
    return files


def tutorial_names() -> list[str]:
    """Every tutorial (the index excepted), by file stem."""
    return sorted(p.stem for p in TUTORIALS.glob("*.md") if p.stem != "index")


def write_site(name: str, folder: Path) -> Path:
    """Write the site of tutorial ``name`` into ``folder``; returns the folder. A tutorial of
    several sites writes each into its own subfolder (``shop/site.toml``, ...)."""
    files = snippets((TUTORIALS / f"{name}.md").read_text(encoding="utf-8"))
    assert any(Path(p).name == "site.toml" for p in files), f"tutorial {name} has no site.toml"
    for path, text in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return folder


def site_folders(folder: Path) -> list[Path]:
    """The sites :func:`write_site` wrote into ``folder``: it, or its subfolders with a
    ``site.toml`` each."""
    return sorted(p.parent for p in folder.rglob("site.toml"))


def tutorial_app(name: str, tmp_path: Path, db_url: str, **extra: object) -> Iterator[Flask]:
    """The host serving tutorial ``name``'s site on ``db_url``; the ledger verifies afterwards."""
    site = write_site(name, tmp_path / "site")
    config = app_config(
        tmp_path / "instance",
        SITE_DIR=site,
        THEMES_DIR=ROOT / "themes",
        DATABASE_URL=db_url,
        SEED=False,
        **extra,
    )
    yield from verified_app(config)
