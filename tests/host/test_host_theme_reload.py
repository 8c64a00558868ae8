"""Themes reload like pages: a new, changed or removed template shortcode is picked up by the
running app (pages using it recompile), without a restart; a broken one keeps the last good."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.support.host import make_app, store
from tests.support.paths import ROOT, SITE
from tests.support.visitors import Visitor

HELLO = '{# shortcode\ndescription = "Says hello."\n[attributes]\nwho = { type = "str" }\n#}\nHello {{ attrs.who }}!'


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """Private copies of the demo site and the themes folder."""
    site, themes = tmp_path / "site", tmp_path / "themes"
    shutil.copytree(SITE, site)
    shutil.copytree(ROOT / "themes", themes)
    (site / "pages" / "hello.html").write_text('<p>[hello who="Ann"]</p>', "utf-8")
    return site, themes


@pytest.fixture
def app(template_db: Path, tmp_path: Path, folders: tuple[Path, Path]) -> Iterator[Flask]:
    site, themes = folders
    application = make_app(template_db, tmp_path / "instance", SITE_DIR=site, THEMES_DIR=themes)
    application.extensions["shortcodes"].theme.check_every = 0  # look on every request
    yield application
    store(application).close()


def _template(folders: tuple[Path, Path]) -> Path:
    return folders[1] / "default" / "shortcodes" / "hello.html"


def _touch(path: Path, text: str) -> None:
    """Write ``text`` with a later mtime than the last write (file systems have coarse clocks)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, "utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_a_new_template_shortcode_renders_without_a_restart(
    app: Flask, folders: tuple[Path, Path]
) -> None:
    visitor = Visitor(app.test_client())
    assert '<p>[hello who="Ann"]</p>' in visitor.get("/hello")  # unknown yet: text
    _touch(_template(folders), HELLO)
    assert "<p>Hello Ann!</p>" in visitor.get("/hello")


def test_a_changed_template_header_and_a_removed_template_are_picked_up(
    app: Flask, folders: tuple[Path, Path]
) -> None:
    visitor = Visitor(app.test_client())
    _touch(_template(folders), HELLO)
    assert "<p>Hello Ann!</p>" in visitor.get("/hello")
    _touch(_template(folders), HELLO.replace("Hello {{ attrs.who }}!", "Hi {{ attrs.who }}."))
    assert "<p>Hi Ann.</p>" in visitor.get("/hello")
    _template(folders).unlink()
    assert '<p>[hello who="Ann"]</p>' in visitor.get("/hello")


def test_a_broken_template_keeps_the_last_good_one_and_the_site_up(
    app: Flask, folders: tuple[Path, Path]
) -> None:
    visitor = Visitor(app.test_client())
    _touch(_template(folders), HELLO)
    assert "<p>Hello Ann!</p>" in visitor.get("/hello")
    _touch(_template(folders), HELLO.replace('type = "str"', 'type = "colour"'))
    assert "<p>Hello Ann!</p>" in visitor.get("/hello")
