"""Site settings: the ``site.toml`` sections the web host reads.

``[site]`` names the site, its theme and its admin tag; ``[webhooks]`` holds the shared secret
inbound webhooks are signed with; ``[login]`` sets how many failed logins are allowed;
``[products.<id>]`` says what a successful payment for a product grants (credits, a tag) so the
payment webhooks can credit bundles and revoke access, and which Stripe price sells it
(``stripe_price``; with ``interval`` it is a subscription that grants them each period).
``[accounts]`` says who may sign up (``signup = "open" | "invite" | "closed"``) and how many
account emails the sign-up and reset forms send per window. ``demo_payments = true`` in ``[site]`` turns on the simulated checkout (demo sites only). The file is read once by
:mod:`shortcodes.membership.config`, which hands each section to its owner.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shortcodes.membership import vocabulary as vocab
from shortcodes.membership.actionsets import SiteActions
from shortcodes.membership.keys import Key, Keys
from shortcodes.membership.source import Node
from shortcodes.store.identity import MailPolicy
from shortcodes.store.throttle import MAX_WINDOW, LoginPolicy, whole_limit

#: How often a subscription bills (Stripe's ``recurring.interval``); no interval: bought once.
INTERVALS = ("day", "week", "month", "year")
#: ``[login]`` keys and the :class:`LoginPolicy` limits they set.
LOGIN_LIMITS = {
    "max_failures": "per_account_address",
    "max_failures_per_address": "per_address",
    "max_failures_per_account": "per_account",
}

SITE_KEYS = Keys(
    "site",
    "The site itself: its name, theme, where its pages are, and who administers it.",
    {
        "name": Key(
            "text",
            "the site's name, shown in the header and emails",
            '"shortcodes site"',
            '"Credit Academy"',
        ),
        "url": Key(
            "text",
            "the site's public address, used in links that leave the site (emails)",
            "",
            '"https://academy.example.com"',
        ),
        "theme": Key("text", "the theme folder under `themes/`", '"default"', '"default"'),
        "admin_tag": Key(
            "tag name",
            "holding this tag makes a contact an admin (the console, the author preview)",
            '"Site Admin"',
            '"Site Admin"',
        ),
        "buy_more_url": Key(
            "URL or path",
            "where buttons send members who are short of credits",
            '"/credits"',
            '"/credits"',
        ),
        "pages": Key("text", "the pages folder, relative to the site folder", '"pages"', '"pages"'),
        "demo_payments": Key(
            "true/false",
            "the simulated checkout at `/checkout/<product>` that grants products without a payment: demo sites only (`check` warns while it is on)",
            "false",
            "false",
        ),
    },
)
WEBHOOK_KEYS = Keys(
    "webhooks",
    "Inbound webhooks (`/hooks/*`) are signed with this shared secret; see the webhook reference.",
    {
        "secret": Key(
            "text",
            "the shared HMAC secret; `SHORTCODES_WEBHOOK_SECRET` in the environment wins, so a real site keeps it out of the repository",
            "",
            '"change-me-to-a-long-random-string"',
        ),
    },
)
LOGIN_KEYS = Keys(
    "login",
    "How many failed logins are allowed per window before the form refuses without checking the password.",
    {
        "window": Key(
            "duration", "the window the failures are counted in (at most 30 days)", '"15m"', '"15m"'
        ),
        "max_failures": Key("whole number", "failures of one email from one address", "5", "5"),
        "max_failures_per_address": Key(
            "whole number", "failures of any email from one address", "20", "20"
        ),
        "max_failures_per_account": Key(
            "whole number",
            "failures of one email from anywhere (reaching it locks the account for the window)",
            "50",
            "50",
        ),
    },
)
PRODUCT_KEYS = Keys(
    "products.<id>",
    "What one successful payment for the product grants (credits, a tag, or both), and the Stripe price that sells it. The id is what payment webhooks and `[checkout_button product=...]` name.",
    {
        "title": Key("text", "the product's name", "the id", '"100 credits"'),
        "credits": Key(
            "whole number",
            "credits a payment adds (per paid period for a subscription)",
            "0",
            "100",
        ),
        "field": Key(
            "credit field",
            "the credit field they go to",
            "the first of `[credits] fields`",
            '"_Credits"',
        ),
        "tag": Key(
            "tag name",
            "a tag a payment applies (held while a subscription is paid; a refund removes it)",
            "",
            '"Owns Course A"',
        ),
        "price": Key("text", "the price as shown on buttons", "", '"$10"'),
        "stripe_price": Key(
            "Stripe price id",
            "the Stripe price (`price_...`) that sells it through Checkout",
            "",
            '"price_1PbBundle100"',
        ),
        "interval": Key(
            "one of day, week, month, year",
            "makes it a subscription billed each interval (needs `stripe_price`)",
            "",
            '"month"',
        ),
    },
)


#: ``[accounts] signup``: anyone may sign up; only contacts the site already has (imported, added
#: by a CRM or an admin) may claim their account; nobody may.
SIGNUP_MODES = ("open", "invite", "closed")
ACCOUNT_KEYS = Keys(
    "accounts",
    "Who may sign up, and how many account emails (sign-up, password reset, email change) the forms send per window.",
    {
        "signup": Key(
            "text",
            '`"open"` (anyone), `"invite"` (only contacts the site already has claim their account) or `"closed"`',
            '"open"',
            '"open"',
        ),
        "max_emails_per_email": Key(
            "whole number", "account emails to one email address per window", "3", "3"
        ),
        "max_emails_per_address": Key(
            "whole number",
            "account emails requested from one visitor address per window",
            "10",
            "10",
        ),
        "email_window": Key(
            "duration", "the window the emails are counted in (at most 30 days)", '"1h"', '"1h"'
        ),
    },
)


@dataclass(frozen=True, slots=True)
class AccountSettings:
    """``[accounts]``: who may sign up, and the account-mail rate limit."""

    signup: str = "open"
    mail: MailPolicy = field(default_factory=MailPolicy)


@dataclass(frozen=True, slots=True)
class Product:
    """What one successful payment grants: credits into a field, a tag, or both."""

    id: str
    title: str
    credits: int = 0
    field: str = "_Credits"
    tag: str | None = None
    price: str = ""
    #: The Stripe price the product is sold at ("" when it is not sold through Stripe).
    stripe_price: str = ""
    #: A subscription's billing period (``month``...); None for a bundle bought once.
    interval: str | None = None

    @property
    def is_subscription(self) -> bool:
        """True when the product renews each period (Checkout mode ``subscription``)."""
        return self.interval is not None


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
    #: The simulated checkout (``/checkout/<product>``) that credits without a payment: demo only.
    demo_payments: bool = False
    #: Sign-up and account mail (``[accounts]``).
    accounts: AccountSettings = field(default_factory=AccountSettings)

    @property
    def seed_file(self) -> Path:
        """The demo contacts to create on first run (optional)."""
        return self.root / "seed.toml"


def load_site(root: str | os.PathLike[str]) -> SiteSettings:
    """The host settings of ``<root>/site.toml`` (the whole file is validated)."""
    from shortcodes.membership.config import load_config

    return load_config(root).host


def load_host(root: Node, folder: Path, actions: SiteActions) -> SiteSettings:
    """Validate ``[site]``, ``[webhooks]``, ``[login]``, ``[accounts]`` and ``[products]``.

    ``SHORTCODES_WEBHOOK_SECRET`` in the environment wins over ``[webhooks] secret``, so a real
    site keeps its secret out of the repository.
    """
    site = root.child("site", {}).table(SITE_KEYS)
    hooks = root.child("webhooks", {}).table(WEBHOOK_KEYS)
    secret = os.environ.get("SHORTCODES_WEBHOOK_SECRET") or hooks.child("secret").text(default="")
    return SiteSettings(
        root=folder,
        name=site.child("name").text(default="shortcodes site"),
        url=site.child("url").text(default=""),
        theme=site.child("theme").text(default="default"),
        admin_tag=site.child("admin_tag", "Site Admin").check(vocab.tag_name),
        buy_more_url=site.child("buy_more_url", "/credits").check(vocab.url_or_path),
        pages_dir=folder / site.child("pages").text(default="pages"),
        webhook_secret=secret,
        products=_products(root.child("products", {}), actions),
        actions=actions,
        login=_login_policy(root.child("login", {})),
        demo_payments=site.child("demo_payments", False).check(vocab.flag),
        accounts=_accounts(root.child("accounts", {})),
    )


def _accounts(node: Node) -> AccountSettings:
    """``[accounts]``: the sign-up mode and the account-mail limits (defaults for keys left out)."""
    node.table(ACCOUNT_KEYS)
    mode = node.child("signup", "open")
    if mode.value not in SIGNUP_MODES:
        raise mode.fail(f"must be one of {', '.join(SIGNUP_MODES)}, got {mode.value!r}")
    default = MailPolicy()
    window = node.child("email_window", "1h")
    length = window.check(vocab.duration).approximate()
    if length > MAX_WINDOW:
        raise window.fail(f"the email window is at most 30 days, got {window.value!r}")
    mail = MailPolicy(
        per_email=node.child("max_emails_per_email", default.per_email).check(whole_limit),
        per_address=node.child("max_emails_per_address", default.per_address).check(whole_limit),
        window=length,
    )
    return AccountSettings(str(mode.value), mail)


def _login_policy(node: Node) -> LoginPolicy:
    """``[login]``: how many failed logins the window allows (see :mod:`.store.throttle`); the
    policy's defaults stand for the keys left out."""
    node.table(LOGIN_KEYS)
    limits = {
        name: node.child(key).check(whole_limit)
        for key, name in LOGIN_LIMITS.items()
        if key in node
    }
    window = node.child("window", "15m")
    length = window.check(vocab.duration).approximate()
    if length > MAX_WINDOW:
        raise window.fail(f"the login window is at most 30 days, got {window.value!r}")
    return LoginPolicy(**limits, window=length)


def _products(node: Node, actions: SiteActions) -> dict[str, Product]:
    products = {}
    for pid, spec in node.table(what="a table of products").items():
        Node(spec.source, spec.path, pid).check(lambda v: vocab.name(v, "a product id"))
        spec.table(PRODUCT_KEYS, what=f"a product: a table with {', '.join(PRODUCT_KEYS)}")
        credits = spec.child("credits", 0).check(vocab.amount)
        field_name = spec.child("field", actions.credit_fields[0]).check(
            lambda v: vocab.credit_field(v, actions.credit_fields)
        )
        tag = spec.child("tag").check(actions.terms.tag) if "tag" in spec else None
        if not credits and not tag:
            raise spec.fail("grants nothing: give it credits, a tag, or both")
        title = spec.child("title").text(default=pid)
        products[pid] = Product(
            pid,
            title,
            credits,
            field_name,
            tag,
            spec.child("price").text(default=""),
            *_stripe_terms(spec),
        )
    return products


def _stripe_terms(spec: Node) -> tuple[str, str | None]:
    """A product's ``stripe_price`` and ``interval`` (a subscription must name its price)."""
    price = spec.child("stripe_price").check(vocab.stripe_price) if "stripe_price" in spec else ""
    if "interval" not in spec:
        return price, None
    interval = spec.child("interval")
    if interval.value not in INTERVALS:
        raise interval.fail(f"must be one of {', '.join(INTERVALS)}, got {interval.value!r}")
    if not price:
        raise spec.fail("a subscription (interval) is sold through Stripe: give it stripe_price")
    return price, str(interval.value)
