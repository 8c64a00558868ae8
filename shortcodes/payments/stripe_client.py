"""Payments API client: one ``stripe.StripeClient`` per site, pointed at Stripe or, in tests,
at a Stripe-compatible server (``STRIPE_API_BASE``)."""

from __future__ import annotations

import stripe
from stripe._base_address import BaseAddresses

from shortcodes.errors import SettingsError
from shortcodes.payments.stripe_settings import StripeSettings


def make_client(settings: StripeSettings) -> stripe.StripeClient:
    """The client for these settings; refuses when no API key is configured."""
    if not settings.can_sell:
        raise SettingsError("set SHORTCODES_STRIPE_SECRET_KEY to talk to Stripe")
    if settings.api_base:
        bases: BaseAddresses = {"api": settings.api_base}
        # Retries carry the same idempotency key, so a retried create makes one object.
        return stripe.StripeClient(settings.secret_key, base_addresses=bases, max_network_retries=2)
    return stripe.StripeClient(settings.secret_key, max_network_retries=2)
