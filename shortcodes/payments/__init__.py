"""Payments through Stripe: Checkout for bundles and subscriptions, the signed webhook that
fulfils them, and reconciliation of missed events.

Products name their Stripe price in ``site.toml`` (:class:`shortcodes.membership.site.Product`);
the secrets come from the environment (:mod:`.config`). Fulfilment happens only from Stripe's
signed events (:mod:`.webhook` verifies them, :mod:`.mapping` applies them once, in the same
transaction as their record); :mod:`.checkout` only sends visitors to Stripe.
"""
