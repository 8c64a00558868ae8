"""Payments configuration: the Stripe secrets and API address, from the app's settings.

The secrets never live in ``site.toml``: ``SHORTCODES_STRIPE_SECRET_KEY`` (the API key, ``sk_…``
or a restricted ``rk_…``), ``SHORTCODES_STRIPE_WEBHOOK_SECRET`` (the endpoint's signing secret,
``whsec_…``) and, for tests against a Stripe-compatible server, ``SHORTCODES_STRIPE_API_BASE``.
The host reads them with its other ``SHORTCODES_*`` settings (``create_app`` config wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shortcodes.errors import SettingsError
from shortcodes.membership import vocabulary as vocab

#: The app config keys (``SHORTCODES_<KEY>`` in the environment).
KEYS = ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE")
#: Stripe's default tolerance for a signed event's timestamp, in seconds.
TOLERANCE = 300


@dataclass(frozen=True, slots=True)
class StripeSettings:
    """How this site talks to Stripe; empty secrets mean "not configured"."""

    secret_key: str = ""
    webhook_secret: str = ""
    api_base: str = ""

    @property
    def can_sell(self) -> bool:
        """True when Checkout Sessions can be created (an API key is set)."""
        return bool(self.secret_key)

    @property
    def can_receive(self) -> bool:
        """True when ``/hooks/stripe`` can verify events (a signing secret is set)."""
        return bool(self.webhook_secret)


def stripe_settings(config: Mapping[str, Any]) -> StripeSettings:
    """The Stripe settings of an app config; a malformed value is a :class:`SettingsError`."""
    key, secret, base = (str(config.get(k) or "").strip() for k in KEYS)
    if key and not key.startswith(("sk_", "rk_")):
        raise SettingsError("STRIPE_SECRET_KEY must be a Stripe secret key (sk_… or rk_…)")
    if secret and not secret.startswith("whsec_"):
        raise SettingsError("STRIPE_WEBHOOK_SECRET must be an endpoint signing secret (whsec_…)")
    if base:
        try:
            base = vocab.http_url(base).rstrip("/")
        except ValueError as exc:
            raise SettingsError(f"STRIPE_API_BASE: {exc}") from None
    return StripeSettings(key, secret, base)
