"""Host site settings: the parts of ``site.toml`` the web host reads (the store reads the rest).

``[site]`` names the site, its theme and its admin tag; ``[webhooks]`` holds the shared secret
inbound webhooks are signed with; ``[login]`` sets how many failed logins are allowed;
``[products.<id>]`` says what a successful payment for a product grants (credits, a tag) so the
payment webhooks can credit bundles and revoke access.
``[credits]``, ``[tags]`` and ``[actionsets]`` are validated by :mod:`shortcodes.actionsets`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shortcodes.actionsets import (
    ActionsetConfigError,
    SiteActions,
    parse_duration,
    parse_site_actions,
)
from shortcodes.store.throttle import LoginPolicy, whole_limit

_SITE_KEYS = {"name", "url", "theme", "admin_tag", "buy_more_url", "pages"}
_PRODUCT_KEYS = {"title", "credits", "field", "tag", "price"}
#: ``[login]`` keys and the :class:`LoginPolicy` limits they set.
_LOGIN_LIMITS = {
    "max_failures": "per_account_address",
    "max_failures_per_address": "per_address",
    "max_failures_per_account": "per_account",
}


@dataclass(frozen=True, slots=True)
class Product:
    """What one successful payment grants: credits into a field, a tag, or both."""

    id: str
    title: str
    credits: int = 0
    field: str = "_Credits"
    tag: str | None = None
    price: str = ""


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """Everything the host needs from the site folder, validated once at startup."""

    root: Path
    name: str = "shortcodes site"
    url: str = ""
    theme: str = "default"
    admin_tag: str = "Site Admin"
    buy_more_url: str = "/credits"
    pages_dir: Path = Path("pages")
    webhook_secret: str = ""
    products: Mapping[str, Product] = field(default_factory=dict)
    actions: SiteActions = field(default_factory=SiteActions)
    login: LoginPolicy = field(default_factory=LoginPolicy)

    @property
    def seed_file(self) -> Path:
        """The demo contacts to create on first run (optional)."""
        return self.root / "seed.toml"


def _fail(file: Path, key: str, message: str) -> ActionsetConfigError:
    return ActionsetConfigError(message, file=str(file), key=key)


def load_site(root: str | os.PathLike[str]) -> SiteSettings:
    """Read ``<root>/site.toml``; every problem is an error naming the file and the key."""
    root = Path(root).resolve()
    file = root / "site.toml"
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(file, "", f"cannot read the site configuration: {exc.strerror}") from exc
    actions = parse_site_actions(text, str(file))  # also reports TOML syntax errors with a line
    data = tomllib.loads(text)
    site = _table(file, data, "site", _SITE_KEYS)
    hooks = _table(file, data, "webhooks", {"secret"})
    products = _products(file, data.get("products", {}), actions)
    secret = os.environ.get("SHORTCODES_WEBHOOK_SECRET") or _text(
        file, hooks, "webhooks.secret", ""
    )
    return SiteSettings(
        root=root,
        name=_text(file, site, "site.name", "shortcodes site"),
        url=_text(file, site, "site.url", ""),
        theme=_text(file, site, "site.theme", "default"),
        admin_tag=_text(file, site, "site.admin_tag", "Site Admin"),
        buy_more_url=_text(file, site, "site.buy_more_url", "/credits"),
        pages_dir=root / _text(file, site, "site.pages", "pages"),
        webhook_secret=secret,
        products=products,
        actions=actions,
        login=_login_policy(file, _table(file, data, "login", {"window", *_LOGIN_LIMITS})),
    )


def _table(file: Path, data: Mapping[str, Any], name: str, allowed: set[str]) -> dict[str, Any]:
    raw = data.get(name, {})
    if not isinstance(raw, dict):
        raise _fail(file, name, "must be a table")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _fail(
            file, f"{name}.{unknown[0]}", f"unknown key (expected {', '.join(sorted(allowed))})"
        )
    return raw


def _text(file: Path, table: Mapping[str, Any], key: str, default: str) -> str:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if not isinstance(value, str):
        raise _fail(file, key, f"must be text, got {value!r}")
    return value


def _login_policy(file: Path, table: Mapping[str, Any]) -> LoginPolicy:
    """``[login]``: how many failed logins the window allows (see :mod:`.store.throttle`); the
    policy's defaults stand for the keys left out."""
    limits = {}
    for key, name in _LOGIN_LIMITS.items():
        if key in table:
            try:
                limits[name] = whole_limit(table[key])
            except ValueError as exc:
                raise _fail(file, f"login.{key}", str(exc)) from exc
    window = table.get("window", "15m")
    try:
        return LoginPolicy(**limits, window=parse_duration(window))
    except ValueError as exc:
        raise _fail(file, "login.window", str(exc)) from exc


def _products(file: Path, raw: Any, actions: SiteActions) -> dict[str, Product]:
    if not isinstance(raw, dict):
        raise _fail(file, "products", "must be a table of products")
    products = {}
    for pid, spec in raw.items():
        key = f"products.{pid}"
        if not isinstance(spec, dict) or set(spec) - _PRODUCT_KEYS:
            raise _fail(file, key, f"a product is a table with {', '.join(sorted(_PRODUCT_KEYS))}")
        credits = spec.get("credits", 0)
        if isinstance(credits, bool) or not isinstance(credits, int) or credits < 0:
            raise _fail(file, f"{key}.credits", f"must be a whole number >= 0, got {credits!r}")
        fields = {f.casefold(): f for f in actions.credit_fields}
        credit_field = fields.get(str(spec.get("field", "_Credits")).casefold())
        if credit_field is None:
            raise _fail(file, f"{key}.field", "must be a credit field declared in [credits]")
        tag = spec.get("tag")
        if tag is not None and not isinstance(tag, str):
            raise _fail(file, f"{key}.tag", "must be a tag name")
        if not credits and not tag:
            raise _fail(file, key, "grants nothing: give it credits, a tag, or both")
        title = _text(file, spec, f"{key}.title", pid)
        products[pid] = Product(
            pid, title, credits, credit_field, tag, _text(file, spec, f"{key}.price", "")
        )
    return products
