"""Host assembly: the :class:`Shortcodes` Flask extension and the ``create_app`` app factory.

``create_app(config)`` makes the Flask app, fills ``app.config`` with the defaults below, then the
``SHORTCODES_*`` environment (Flask's ``from_prefixed_env``), then ``config``, and hands it to
``Shortcodes(app)``. ``Shortcodes.init_app`` resolves where the site, themes, instance folder and
database are through :func:`shortcodes.host.settings.resolve_settings` (the CLI's resolver too),
opens and migrates the store, seeds the demo contacts when the site has a seed file, and
registers the views. Configuration keys (all optional): ``SITE_DIR``, ``THEMES_DIR``,
``INSTANCE_PATH``, ``DATABASE_URL`` (see :mod:`.settings`), ``SECRET_KEY`` (else a random one kept
in the instance folder), ``SESSION_COOKIE_SECURE``, ``SEED``, ``ACTION_TOKEN_MAX_AGE``,
``WEBHOOK_SECRET``, ``STRIPE_SECRET_KEY``, ``STRIPE_WEBHOOK_SECRET``, ``STRIPE_API_BASE`` (see
:mod:`shortcodes.payments.stripe_settings`), ``PROXY_HOPS`` (proxies in front whose ``X-Forwarded-For``/``-Proto`` to
trust), plus any Flask setting; each can be given as ``SHORTCODES_<KEY>`` in the environment.

Pages the host draws itself (login form, error pages, flashed messages, the preview banner, lint
problem list and preview index) are the Jinja2 templates in ``shortcodes/host/templates``,
rendered with autoescape as ``host/<name>.html``; a theme overrides one by shipping
``themes/<theme>/host/<name>.html``.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from shortcodes.errors import PageError, SettingsError
from shortcodes.host import (
    admin,
    auth,
    buttons,
    checkout,
    editor,
    preview,
    selfservice,
    views,
    webhooks,
)
from shortcodes.host.pages import PageStore
from shortcodes.host.seed import seed
from shortcodes.host.settings import (
    ENV_PREFIX,
    Settings,
    resolve_settings,
    text_settings,
)
from shortcodes.host.sitecheck import site_environment
from shortcodes.host.state import EXTENSION, HostState
from shortcodes.membership.config import load_config
from shortcodes.membership.signing import AccountSigner, ActionSigner
from shortcodes.membership.site import SiteSettings
from shortcodes.payments import buying as pay
from shortcodes.payments import webhook as stripe_hooks
from shortcodes.payments.stripe_settings import stripe_settings
from shortcodes.store.facade import Store

#: The host's own page templates (package data), overridable from the theme's ``host/`` folder.
TEMPLATES = Path(__file__).with_name("templates")
STARTUP_ATTEMPTS = 40
DEFAULTS: dict[str, Any] = {
    "SEED": True,
    "ACTION_TOKEN_MAX_AGE": 3600,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "PROXY_HOPS": 0,
    # Session cookie: never readable by scripts, not sent on cross-site subrequests or POSTs.
    # SESSION_COOKIE_SECURE (SHORTCODES_SESSION_COOKIE_SECURE=true) adds Secure behind HTTPS.
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "shortcodes_session",
    "PERMANENT_SESSION_LIFETIME": 14 * 24 * 3600,
}

#: Sent with every response. No inline script or style may run (the host and the default theme
#: use none), no other site may frame a page, no type is sniffed, and other sites learn only our
#: origin from links. ``form-action`` is left open: buying redirects a form post to Stripe.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
#: Only the theme's static files are the same for every visitor; everything else the host
#: answers depends on who asks (pages, forms with CSRF tokens, account, admin, errors).
SHARED_PREFIXES = ("/theme/",)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The host app: defaults, then ``SHORTCODES_*`` from the environment, then ``config``."""
    # No Flask static folder: theme files are served from the theme at /theme/.
    app = Flask("shortcodes.host", static_folder=None)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env(ENV_PREFIX)
    app.config.update(text_settings())  # a secret of digits stays text (see TEXT_KEYS)
    app.config.from_mapping(config or {})
    Shortcodes(app)
    return app


class Shortcodes:
    """The host as a Flask extension: ``Shortcodes(app)``, or ``Shortcodes()`` then ``init_app``.

    Its state (store, site, engine, pages, signer, theme) lives in ``app.extensions["shortcodes"]``
    (see :mod:`.state`), so one extension object can serve several apps.
    """

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Serve the site ``app.config`` names from ``app``: store, views, templates, errors."""
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        settings = resolve_settings(app.config)
        settings.require_site()
        _apply_settings(app, settings)
        hops = _proxy_hops(app.config["PROXY_HOPS"])
        if hops:
            # The address the login throttle counts is the visitor's, not the proxy's.
            proxied = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
            app.wsgi_app = proxied  # type: ignore[method-assign]
        state = _build_state(app, settings)
        app.extensions[EXTENSION] = state
        _register(app, state)


def _apply_settings(app: Flask, settings: Settings) -> None:
    """Write the resolved places back into ``app.config``; make the instance folder."""
    app.config.update(
        SITE_DIR=settings.site_dir,
        THEMES_DIR=settings.themes_dir,
        INSTANCE_PATH=settings.instance_path,
        DATABASE_URL=settings.database_url,
    )
    # Flask's own default would be beside the package (inside site-packages once installed).
    app.instance_path = str(settings.instance_path)
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(settings.instance_path)


def _proxy_hops(value: Any) -> int:
    """``PROXY_HOPS``: how many proxies in front set ``X-Forwarded-For`` (0: none, trust no
    header, since anyone can send one)."""
    text = str(value).strip()
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()):
        raise SettingsError(f"PROXY_HOPS must be a whole number >= 0, got {value!r}")
    return int(text)


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


def _build_state(app: Flask, settings: Settings) -> HostState:
    config = load_config(settings.site_dir)
    site = config.host
    if app.config.get("WEBHOOK_SECRET"):
        site = dataclasses.replace(site, webhook_secret=str(app.config["WEBHOOK_SECRET"]))
    store = _open_store(settings.database_url, site, seed_demo=bool(app.config["SEED"]))
    # Rules are checked at startup too: a bad rule stops the site with an error naming it.
    automations = config.automations
    env, theme = site_environment(site, settings.themes_dir, url_for)
    signer = ActionSigner(
        str(app.config["SECRET_KEY"]), max_age=int(app.config["ACTION_TOKEN_MAX_AGE"])
    )
    pages = PageStore(site.pages_dir, env)
    payments = stripe_settings(app.config)
    links = AccountSigner(str(app.config["SECRET_KEY"]))
    return HostState(site, store, env, pages, signer, theme, automations, payments, links)


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


def _register(app: Flask, state: HostState) -> None:
    csrf = CSRFProtect(app)
    csrf.exempt(webhooks.bp)  # authenticated by signature; no browser session involved
    csrf.exempt(stripe_hooks.bp)  # the same, with Stripe's signature
    app.register_blueprint(_templates(state.theme.path))
    # The simulated checkout credits without a payment: only a demo site may have it.
    demo = checkout.bp if state.site.demo_payments else checkout.closed
    blueprints = [auth.bp, selfservice.bp, admin.bp, buttons.bp, demo, pay.bp, stripe_hooks.bp]
    blueprints += [webhooks.bp, preview.bp, editor.bp]
    blueprints.append(views.bp)  # last: its catch-all page route must not shadow the others
    for bp in blueprints:
        app.register_blueprint(bp)
    app.before_request(_refuse_nul)
    app.after_request(_secure_headers)
    app.register_error_handler(DataError, _data_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(PageError, _page_error)


def _templates(theme: Path) -> Blueprint:
    """A blueprint with no views that lends Flask the host's templates as ``host/<name>.html``:
    the theme's ``host/<name>.html`` when it has one, else the package's own."""
    bp = Blueprint("host_templates", __name__)
    # Set per app: which theme overrides depends on the site the app serves.
    bp.jinja_loader = PrefixLoader(
        {"host": ChoiceLoader([FileSystemLoader(theme / "host"), FileSystemLoader(TEMPLATES)])}
    )
    return bp


def _refuse_nul(*_: Any) -> None:
    """400 for a NUL character in the path, a query argument or a form field: no text the site
    keeps may hold one (PostgreSQL refuses them), so it can only be an attack or garbage."""
    values = [request.path, *request.args.values()]
    if request.method == "POST" and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        values += request.form.values()
    if any("\x00" in value for value in values):
        abort(400, "A NUL character is not allowed here.")


def _secure_headers(response: Response) -> Response:
    """The security headers, and ``Cache-Control: private, no-store`` on every response that is
    not a theme file (see :data:`SECURITY_HEADERS`, :data:`SHARED_PREFIXES`)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith(SHARED_PREFIXES):
        response.headers["Cache-Control"] = "private, no-store"
    return response


def _data_error(exc: DataError) -> ResponseReturnValue:
    # A value the database cannot hold (a number past its column, a NUL in JSON text) reached a
    # query: the transaction rolled back, so nothing changed. It is the sender's input.
    current_app.logger.warning("refused a value the database cannot hold: %s", exc.orig)
    return _http_error(BadRequest("A value in the request is out of range or malformed."))


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
