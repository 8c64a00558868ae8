"""Host assembly: the Flask app factory wiring site, store, engine, theme and blueprints together.

``create_app(config)`` reads the site folder, opens the store (``DATABASE_URL`` or SQLite in the
instance folder), migrates it, seeds the demo contacts when the site has a seed file, and
registers the views. Configuration keys (all optional): ``SITE_DIR``, ``THEMES_DIR``,
``INSTANCE_PATH``, ``DATABASE_URL``, ``SECRET_KEY``, ``SESSION_COOKIE_SECURE``, ``SEED``,
``ACTION_TOKEN_MAX_AGE``, ``WEBHOOK_SECRET``, ``PROXY_HOPS`` (proxies in front whose
``X-Forwarded-For``/``-Proto`` to trust; ``SHORTCODES_PROXY_HOPS``), plus any Flask setting.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from shortcodes.automations.shortcodes import register_loyalty_shortcodes
from shortcodes.environment import Environment
from shortcodes.errors import PageError
from shortcodes.host import actions, auth, checkout, preview, views, webhooks
from shortcodes.host.checkout import register_host_shortcodes
from shortcodes.host.pages import PageStore
from shortcodes.host.seed import seed
from shortcodes.host.state import EXTENSION, HostState
from shortcodes.membership.config import load_config
from shortcodes.membership.site import SiteSettings
from shortcodes.signing import ActionSigner
from shortcodes.store.engine import default_url
from shortcodes.store.store import Store
from shortcodes.themes import load_theme, theme_path

ROOT = Path(__file__).resolve().parents[2]
STARTUP_ATTEMPTS = 40
DEFAULTS: dict[str, Any] = {
    "SITE_DIR": ROOT / "site",
    "THEMES_DIR": ROOT / "themes",
    "INSTANCE_PATH": ROOT / "instance",
    "SEED": True,
    "ACTION_TOKEN_MAX_AGE": 3600,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # Session cookie: never readable by scripts, not sent on cross-site subrequests or POSTs.
    # SESSION_COOKIE_SECURE (or SHORTCODES_SECURE_COOKIES=1) adds Secure behind HTTPS.
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "shortcodes_session",
    "PERMANENT_SESSION_LIFETIME": 14 * 24 * 3600,
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the host app for a site folder (the demo site by default)."""
    settings = {**DEFAULTS, **_environ(), **dict(config or {})}
    instance = Path(settings["INSTANCE_PATH"])
    instance.mkdir(parents=True, exist_ok=True)
    # No Flask static folder: theme files are served from the theme at /theme/.
    app = Flask("shortcodes.host", instance_path=str(instance), static_folder=None)
    app.config.update(settings)
    app.config.setdefault("SECRET_KEY", None)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret(instance)
    hops = _proxy_hops(app.config.get("PROXY_HOPS", 0))
    if hops:
        # The address the login throttle counts is the visitor's, not the proxy's.
        proxied = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
        app.wsgi_app = proxied  # type: ignore[method-assign]
    state = _build_state(app)
    app.extensions[EXTENSION] = state
    _register(app)
    return app


def _proxy_hops(value: Any) -> int:
    """``PROXY_HOPS``: how many proxies in front set ``X-Forwarded-For`` (0: none, trust no
    header, since anyone can send one)."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"PROXY_HOPS must be a whole number >= 0, got {value!r}")
    return int(text)


def _environ() -> dict[str, Any]:
    """Settings an operator gives through the environment (12-factor style)."""
    found: dict[str, Any] = {}
    for key in ("DATABASE_URL", "SECRET_KEY"):
        value = os.environ.get(f"SHORTCODES_{key}") or (
            os.environ.get(key) if key == "DATABASE_URL" else None
        )
        if value:
            found[key] = value
    if os.environ.get("SHORTCODES_PROXY_HOPS"):
        found["PROXY_HOPS"] = os.environ["SHORTCODES_PROXY_HOPS"]
    for key in ("SITE_DIR", "INSTANCE_PATH", "THEMES_DIR"):
        if os.environ.get(f"SHORTCODES_{key}"):
            found[key] = Path(os.environ[f"SHORTCODES_{key}"])
    if os.environ.get("SHORTCODES_SECURE_COOKIES", "").lower() in ("1", "true", "yes"):
        found["SESSION_COOKIE_SECURE"] = True
    return found


def _instance_secret(instance: Path) -> str:
    """A random secret kept in the instance folder, shared by every worker on this machine."""
    path = instance / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip() or _instance_secret_retry(path)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()


def _instance_secret_retry(path: Path) -> str:
    # Another worker created the file a moment ago and is still writing it.
    for _ in range(50):
        time.sleep(0.02)
        text = path.read_text(encoding="ascii").strip()
        if text:
            return text
    raise RuntimeError(f"{path} is empty; delete it and start again")


def _build_state(app: Flask) -> HostState:
    config = load_config(app.config["SITE_DIR"])
    site = config.host
    if app.config.get("WEBHOOK_SECRET"):
        site = dataclasses.replace(site, webhook_secret=app.config["WEBHOOK_SECRET"])
    url = app.config.get("DATABASE_URL") or default_url(app.instance_path)
    store = _open_store(url, site, seed_demo=bool(app.config["SEED"]))
    # Rules are checked at startup too: a bad rule stops the site with an error naming it.
    automations = config.automations
    env = Environment()
    register_host_shortcodes(env)
    register_loyalty_shortcodes(env)
    theme = load_theme(env, theme_path(site.theme, app.config["THEMES_DIR"]), url_for=url_for)
    signer = ActionSigner(app.config["SECRET_KEY"], max_age=int(app.config["ACTION_TOKEN_MAX_AGE"]))
    return HostState(site, store, env, PageStore(site.pages_dir, env), signer, theme, automations)


def _open_store(url: str, site: SiteSettings, *, seed_demo: bool) -> Store:
    """Open, migrate and seed the store, waiting out other workers doing the same on SQLite.

    Several gunicorn workers starting on a new SQLite file race to switch it to WAL mode; SQLite
    answers "database is locked" to the losers at once (that switch does not wait on the busy
    timeout), so the start is retried until the winner is done.
    """
    for attempt in range(STARTUP_ATTEMPTS):
        store = Store.from_url(url, site=site.actions)
        try:
            store.upgrade()
            if seed_demo:
                seed(store, site.seed_file)
            return store
        except OperationalError as exc:
            store.close()
            if "database is locked" not in str(exc) or attempt == STARTUP_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _register(app: Flask) -> None:
    csrf = CSRFProtect(app)
    csrf.exempt(webhooks.bp)  # authenticated by signature; no browser session involved
    for bp in (auth.bp, actions.bp, checkout.bp, webhooks.bp, preview.bp, views.bp):
        app.register_blueprint(bp)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(PageError, _page_error)


def _csrf_error(exc: CSRFError) -> ResponseReturnValue:
    return views.error_page(
        400, "Form expired", f"{exc.description} Reload the page and try again."
    )


def _page_error(exc: PageError) -> ResponseReturnValue:
    # The author's mistake is logged with its file and line; visitors get a plain apology.
    current_app.logger.error("page error: %s", exc)
    return views.error_page(500, "Page error", "This page cannot be shown right now.")


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    code = exc.code or 500
    if request.path.startswith("/hooks/"):
        return jsonify(
            ok=False, error=exc.name.lower().replace(" ", "_"), message=exc.description
        ), code
    return views.error_page(code, exc.name, exc.description or "")
