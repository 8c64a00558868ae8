"""Host site settings, seed file and front matter: bad input is a clear error naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from shortcodes.actionsets import ActionsetConfigError
from shortcodes.host.pages import PageError, split_front_matter
from shortcodes.host.seed import load_seed
from shortcodes.host.site import load_site
from tests.support.paths import SITE

BASE = '[credits]\nfields = ["_Credits"]\n[tags]\n"Gold" = "membership"\n'


def site_with(tmp_path: Path, extra: str) -> Path:
    """A site folder whose site.toml is the base plus ``extra``."""
    (tmp_path / "site.toml").write_text(BASE + extra, encoding="utf-8")
    return tmp_path


def test_the_demo_site_loads_with_its_products_and_actionsets() -> None:
    site = load_site(SITE)
    assert site.name == "Credit Academy"
    assert {p.credits for p in site.products.values()} == {50, 120, 300, 0}
    assert site.products["all-access"].tag == "All Access"
    assert len([a for a in site.actions.actionsets if a.startswith("buy-")]) == 6
    assert site.webhook_secret


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ('[site]\ncolour = "red"\n', "site.colour", "unknown key"),
        ("[site]\nname = 7\n", "site.name", "must be text"),
        ("[products.x]\ncredits = -5\n", "products.x.credits", "whole number"),
        ('[products.x]\ncredits = 5\nfield = "_Points"\n', "products.x.field", "credit field"),
        ('[products.x]\ntitle = "Nothing"\n', "products.x", "grants nothing"),
        ("[login]\nmax_failures = 0\n", "login.max_failures", "whole number >= 1"),
        ('[login]\nmax_failures_per_address = "20"\n', "login.max_failures_per_address", "whole"),
        ("[login]\nmax_failures_per_account = true\n", "login.max_failures_per_account", "whole"),
        ('[login]\nwindow = "soon"\n', "login.window", "a duration is"),
        ('[login]\nwindow = "0m"\n', "login.window", "a duration is"),
        ('[login]\nwindow = "1000000d"\n', "login.window", "at most 30 days"),
        ('[login]\nwindow = "99999999999w"\n', "login.window", "too long"),
        ('[login]\nwindow = "\u0661\u0665m"\n', "login.window", "a duration is"),
        ("[login]\nlockout = 5\n", "login.lockout", "unknown key"),
        ('[[login]]\nwindow = "1h"\n', "login", "must be a table"),
        ('[products.x]\ncredits = 5\ncolour = "red"\n', "products.x", "a product is a table"),
        ("[webhooks]\nsecret = 1\n", "webhooks.secret", "must be text"),
    ],
)
def test_bad_site_settings_name_the_file_and_key(
    tmp_path: Path, extra: str, key: str, words: str
) -> None:
    with pytest.raises(ActionsetConfigError) as caught:
        load_site(site_with(tmp_path, extra))
    assert caught.value.key == key
    assert words in str(caught.value)
    assert "site.toml" in str(caught.value)


def test_a_missing_site_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ActionsetConfigError, match="cannot read the site configuration"):
        load_site(tmp_path)


def test_the_webhook_secret_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHORTCODES_WEBHOOK_SECRET", "from-env")
    site = load_site(site_with(tmp_path, '[webhooks]\nsecret = "in-file"\n'))
    assert site.webhook_secret == "from-env"


@pytest.mark.parametrize(
    "text",
    [
        '[[contacts]]\nname = "No email"\n',
        '[[contacts]]\nemail = "a@b.c"\nrole = "x"\n',
        "contacts = 3\n",
    ],
)
def test_a_bad_seed_file_is_refused_before_anything_is_written(tmp_path: Path, text: str) -> None:
    path = tmp_path / "seed.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ActionsetConfigError, match=r"seed\.toml"):
        load_seed(path)


def test_front_matter_is_read_and_counted_in_lines() -> None:
    meta, body, lines = split_front_matter(
        "---\ntitle: B\naccess: Owns B, All Access\ndata: account\n---\nbody", "b.md"
    )
    assert meta.title == "B"
    assert meta.access == ("Owns B", "All Access")
    assert meta.needs_login
    assert meta.data == ("account",)
    assert body == "body"
    assert lines == 5


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("---\ntitle: x\n", "never closed"),
        ("---\ntitel: x\n---\n", "b.md:2"),
        ("---\nlogin: maybe\n---\n", "yes or no"),
    ],
)
def test_bad_front_matter_names_the_page_and_line(text: str, words: str) -> None:
    with pytest.raises(PageError, match=words):
        split_front_matter(text, "b.md")


def test_login_limits_are_read_from_the_site_file(tmp_path: Path) -> None:
    extra = '[login]\nmax_failures = 3\nmax_failures_per_address = 9\nwindow = "1h"\n'
    policy = load_site(site_with(tmp_path, extra)).login
    assert (policy.per_account_address, policy.per_address, policy.per_account) == (3, 9, 50)
    assert policy.window.total_seconds() == 3600
