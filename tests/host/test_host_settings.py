"""Host settings: one resolver for host and CLI, cwd-relative defaults, theme-overridable pages,
and the login_required / admin_required decorators."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

import shortcodes
from shortcodes.cli import main
from shortcodes.errors import SettingsError
from shortcodes.host import create_app
from shortcodes.host.settings import Settings, resolve_settings
from tests.support.host import logged_in, make_app, store
from tests.support.paths import ROOT, SITE
from tests.support.visitors import Visitor

THEMES = ROOT / "themes"
#: Every variable that could steer where the host or the CLI looks.
STEERING = (
    "DATABASE_URL",
    "SHORTCODES_DATABASE_URL",
    "SHORTCODES_SITE_DIR",
    "SHORTCODES_THEMES_DIR",
    "SHORTCODES_PROXY_HOPS",
    "SHORTCODES_INSTANCE_PATH",
    "SHORTCODES_SECRET_KEY",
    "SHORTCODES_SEED",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No steering variables, and the working directory is an empty temporary folder."""
    for name in STEERING:
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("SHORTCODES_THEMES_DIR", str(THEMES))  # ./themes would be work/themes
    return work


def test_defaults_are_folders_of_the_working_directory(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHORTCODES_THEMES_DIR")
    assert resolve_settings() == Settings(
        site_file=clean_env / "site" / "site.toml",
        themes_dir=clean_env / "themes",
        instance_path=clean_env / "instance",
        database_url=f"sqlite:///{clean_env / 'instance' / 'shortcodes.db'}",
        site_named=False,
    )


def test_explicit_values_beat_shortcodes_variables_which_beat_database_url(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///plain.db")
    assert resolve_settings().database_url == "sqlite:///plain.db"
    monkeypatch.setenv("SHORTCODES_DATABASE_URL", "sqlite:///prefixed.db")
    monkeypatch.setenv("SHORTCODES_SITE_DIR", "elsewhere")
    found = resolve_settings()
    assert (found.database_url, found.site_dir) == (
        "sqlite:///prefixed.db",
        clean_env / "elsewhere",
    )
    given = resolve_settings({"DATABASE_URL": "sqlite:///given.db", "SITE_DIR": None})
    assert (given.database_url, given.site_dir) == ("sqlite:///given.db", clean_env / "elsewhere")


def test_cli_site_may_name_the_site_toml_itself(clean_env: Path) -> None:
    found = resolve_settings({"SITE_DIR": "conf/my-site.toml"})
    assert (found.site_file, found.site_dir) == (
        clean_env / "conf" / "my-site.toml",
        clean_env / "conf",
    )


def test_with_only_shortcodes_database_url_set_host_and_cli_use_the_same_database(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drift bug: the CLI read only DATABASE_URL, the host SHORTCODES_DATABASE_URL."""
    database = clean_env / "shared.db"
    monkeypatch.setenv("SHORTCODES_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("SHORTCODES_SITE_DIR", str(SITE))
    monkeypatch.setenv("SHORTCODES_SEED", "false")  # parsed as JSON by from_prefixed_env
    app = create_app({"SECRET_KEY": "s"})
    assert app.config["SEED"] is False
    assert main(["contacts", "add", "cli@example.com"]) == 0
    assert store(app).get_contact("cli@example.com").email == "cli@example.com"
    assert app.config["DATABASE_URL"] == f"sqlite:///{database}"
    assert not (clean_env / "instance" / "shortcodes.db").exists()
    store(app).close()


def test_with_only_the_instance_folder_set_host_and_cli_use_the_same_database(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = clean_env / "var" / "site-instance"
    monkeypatch.setenv("SHORTCODES_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("SHORTCODES_SITE_DIR", str(SITE))
    app = create_app({"SECRET_KEY": "s", "SEED": False})
    assert app.instance_path == str(instance)
    assert app.config["DATABASE_URL"] == f"sqlite:///{instance / 'shortcodes.db'}"
    assert main(["contacts", "add", "cli@example.com"]) == 0
    assert store(app).get_contact("cli@example.com").email == "cli@example.com"
    store(app).close()


def test_the_instance_folder_is_in_the_working_directory_not_the_package(clean_env: Path) -> None:
    app = create_app({"SITE_DIR": SITE, "SEED": False})
    assert app.instance_path == str(clean_env / "instance")
    assert (clean_env / "instance" / "shortcodes.db").is_file()
    assert (clean_env / "instance" / "secret_key").is_file()  # no SECRET_KEY given
    package = Path(shortcodes.__file__).parent
    assert not Path(app.instance_path).is_relative_to(package)
    store(app).close()


def test_a_secret_key_of_digits_stays_text(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHORTCODES_SECRET_KEY", "123456789")
    monkeypatch.setenv("SHORTCODES_PROXY_HOPS", "1")
    app = create_app({"SITE_DIR": SITE, "SEED": False})
    assert (app.config["SECRET_KEY"], app.config["PROXY_HOPS"]) == ("123456789", 1)
    store(app).close()


def test_a_missing_site_is_a_clear_error(clean_env: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        create_app({"SECRET_KEY": "s"})
    assert str(caught.value) == (
        f"no site found: {clean_env / 'site' / 'site.toml'} does not exist. Run from the folder "
        "that holds site/, or set SHORTCODES_SITE_DIR (--site for the CLI) to the site folder"
    )
    assert not (clean_env / "instance").exists()  # nothing made before the site was found


def test_server_py_without_a_site_prints_one_line_and_exits_1(clean_env: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in STEERING}
    env["SHORTCODES_THEMES_DIR"] = str(THEMES)
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, str(ROOT / "server.py")],
        cwd=clean_env,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"error: no site found: {clean_env / 'site' / 'site.toml'} does not exist. Run from the "
        "folder that holds site/, or set SHORTCODES_SITE_DIR (--site for the CLI) to the site "
        "folder\n"
    )


# -- templates -------------------------------------------------------------------------------------


@pytest.fixture
def themed_app(template_db: Path, tmp_path: Path) -> Iterator[Flask]:
    """The demo site with a copy of the default theme that overrides ``host/error.html``."""
    themes = tmp_path / "themes"
    shutil.copytree(ROOT / "themes" / "default", themes / "default")
    (themes / "default" / "host").mkdir()
    (themes / "default" / "host" / "error.html").write_text(
        '<p class="sorry">Sorry: {{ text }}</p>', encoding="utf-8"
    )
    application = make_app(template_db, tmp_path / "instance", THEMES_DIR=themes)
    yield application
    store(application).close()


def test_a_theme_overrides_a_host_template(themed_app: Flask) -> None:
    response = themed_app.test_client().get("/no-such-page")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert '<p class="sorry">Sorry: The requested URL was not found on the server.' in body
    # The templates it does not override still come from the package.
    assert 'name="csrf_token"' in themed_app.test_client().get("/login").get_data(as_text=True)


def test_the_package_error_template_is_used_without_an_override(app: Flask) -> None:
    body = app.test_client().get("/no-such-page").get_data(as_text=True)
    assert "<p>The requested URL was not found on the server." in body


def test_the_login_template_escapes_what_the_visitor_typed(visitor: Visitor) -> None:
    response = visitor.login('"><script>alert(1)</script>@example.com', "wrong")
    assert response.status_code == 401
    body = response.get_data(as_text=True)
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@example.com"' in body
    assert "<script>alert(1)" not in body


# -- decorators ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "login"),
    [
        ("/actions/buy-course-b", "/login?next=/actions/buy-course-b"),
        ("/checkout/credits-50", "/login?next=/checkout/credits-50"),
    ],
)
def test_login_required_sends_anonymous_posts_to_the_login_page(
    visitor: Visitor, url: str, login: str
) -> None:
    visitor.get("/login")
    response = visitor.client.post(url, data={"csrf_token": visitor.csrf()})
    assert (response.status_code, response.location) == (302, login)


@pytest.mark.parametrize(
    ("url", "login"),
    [
        ("/_preview", "/login?next=/_preview"),
        ("/_preview/catalog?as=anonymous", "/login?next=/_preview/catalog?as%3Danonymous"),
        ("/_shortcodes", "/login?next=/_shortcodes"),
    ],
)
def test_admin_required_sends_anonymous_visitors_to_login_and_refuses_members(
    app: Flask, url: str, login: str
) -> None:
    anonymous = app.test_client().get(url)
    assert (anonymous.status_code, anonymous.location) == (302, login)
    member = logged_in(app, "member@example.com")
    assert member.client.get(url).status_code == 403
    admin = logged_in(app, "admin@example.com")
    assert admin.client.get(url).status_code == 200


def test_shortcodes_session_cookie_secure_adds_secure_to_the_cookie(
    template_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHORTCODES_SESSION_COOKIE_SECURE", "true")
    app = make_app(template_db, tmp_path / "instance")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    response = Visitor(app.test_client()).login("rich@example.com")
    assert "; Secure" in response.headers["Set-Cookie"]
    store(app).close()
