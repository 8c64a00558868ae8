"""Host site settings, seed file and front matter: bad input is a clear error naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from shortcodes.errors import ConfigError, PageError
from shortcodes.host.pages import split_front_matter
from shortcodes.host.seed import load_seed
from shortcodes.membership.site import load_site
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


DURATION = (
    "a duration is a positive whole number and a unit s, m (minutes), h, d, w, mo (months) or y,"
    " like '14d' or '4mo'; got "
)


@pytest.mark.parametrize(
    ("extra", "key", "where", "reason"),
    [
        (
            '[site]\ncolour = "red"\n',
            "site.colour",
            (6, 1),
            "unknown key 'colour' (expected one of: admin_tag, buy_more_url, demo_payments, name, pages, theme, url)",
        ),
        ("[site]\nname = 7\n", "site.name", (6, 1), "must be text, got 7"),
        (
            "[products.x]\ncredits = -5\n",
            "products.x.credits",
            (6, 1),
            "an amount is a whole number from 0 to 1000000000000, got -5",
        ),
        (
            '[products.x]\ncredits = 5\nfield = "_Points"\n',
            "products.x.field",
            (7, 1),
            "unknown credit field '_Points' (declared in [credits]: _Credits)",
        ),
        (
            '[products.x]\ntitle = "Nothing"\n',
            "products.x",
            (5, 1),
            "grants nothing: give it credits, a tag, or both",
        ),
        (
            "[login]\nmax_failures = 0\n",
            "login.max_failures",
            (6, 1),
            "must be a whole number >= 1, got 0",
        ),
        (
            '[login]\nmax_failures_per_address = "20"\n',
            "login.max_failures_per_address",
            (6, 1),
            "must be a whole number >= 1, got '20'",
        ),
        (
            "[login]\nmax_failures_per_account = true\n",
            "login.max_failures_per_account",
            (6, 1),
            "must be a whole number >= 1, got True",
        ),
        ('[login]\nwindow = "99999999999w"\n', "login.window", (6, 1), DURATION + "'99999999999w'"),
        ('[login]\nwindow = "soon"\n', "login.window", (6, 1), DURATION + "'soon'"),
        ('[login]\nwindow = "0m"\n', "login.window", (6, 1), DURATION + "'0m'"),
        (
            '[login]\nwindow = "\u0661\u0665m"\n',
            "login.window",
            (6, 1),
            DURATION + "'\u0661\u0665m'",
        ),
        (
            '[login]\nwindow = "1000000d"\n',
            "login.window",
            (6, 1),
            "the duration '1000000d' is longer than ten years",
        ),
        (
            '[login]\nwindow = "40d"\n',
            "login.window",
            (6, 1),
            "the login window is at most 30 days, got '40d'",
        ),
        (
            "[login]\nlockout = 5\n",
            "login.lockout",
            (6, 1),
            "unknown key 'lockout' (expected one of: max_failures, max_failures_per_account, max_failures_per_address, window)",
        ),
        ('[[login]]\nwindow = "1h"\n', "login", (5, 1), "must be a table, got a list"),
        (
            '[products.x]\ncredits = 5\ncolour = "red"\n',
            "products.x.colour",
            (7, 1),
            "unknown key 'colour' (expected one of: credits, field, interval, price, stripe_price, tag, title)",
        ),
        ("[webhooks]\nsecret = 1\n", "webhooks.secret", (6, 1), "must be text, got 1"),
    ],
)
def test_bad_site_settings_name_the_file_line_column_key_and_reason(
    tmp_path: Path, extra: str, key: str, where: tuple[int, int], reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_site(site_with(tmp_path, extra))
    error = caught.value
    assert (error.file, error.key, error.reason) == (str(tmp_path / "site.toml"), key, reason)
    assert (error.line, error.column) == where
    assert str(error) == f"{tmp_path / 'site.toml'}:{where[0]}:{where[1]}: {key}: {reason}"


def test_a_missing_site_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the site configuration"):
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
    with pytest.raises(ConfigError, match=r"seed\.toml"):
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
    ("text", "message"),
    [
        ("---\ntitle: x\n", "b.md:1:1: front matter opened with '---' on line 1 is never closed"),
        (
            "---\ntitel: x\n---\n",
            "b.md:2:1: front matter lines are 'key: value' with a key among title, layout, access,"
            " login, data, description, offer; got 'titel: x'",
        ),
    ],
)
def test_bad_front_matter_names_the_page_and_line(text: str, message: str) -> None:
    with pytest.raises(PageError) as info:
        split_front_matter(text, "b.md")
    assert str(info.value) == message


def test_a_bad_front_matter_value_names_the_page_line_and_column() -> None:
    """The position is the value's own, counted from the top of the file."""
    with pytest.raises(PageError) as info:
        split_front_matter("---\ntitle: T\nlogin:  maybe\n---\n", "b.md")
    assert str(info.value) == "b.md:3:9: front matter 'login' is yes or no, got 'maybe'"
    assert (info.value.line, info.value.column) == (3, 9)


def test_login_limits_are_read_from_the_site_file(tmp_path: Path) -> None:
    extra = '[login]\nmax_failures = 3\nmax_failures_per_address = 9\nwindow = "1h"\n'
    policy = load_site(site_with(tmp_path, extra)).login
    assert (policy.per_account_address, policy.per_address, policy.per_account) == (3, 9, 50)
    assert policy.window.total_seconds() == 3600
