"""Payments reconcile: list recent events from the Stripe API and apply any that were missed.

Webhook deliveries can be lost (an outage longer than Stripe's three days of retries, an endpoint
misconfigured for a while) or deferred (a refund that arrived before its payment). Reconcile
reads the events of a period from the API, oldest first, and applies each through the same
:func:`~shortcodes.payments.webhook.apply_event` as the webhook: an event already applied is a
duplicate and changes nothing, so running it twice, or while webhooks arrive, is safe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import stripe

from shortcodes.errors import HookError
from shortcodes.membership.site import SiteSettings
from shortcodes.payments.webhook import apply_event, checked_event
from shortcodes.store.facade import Store

#: Stripe keeps events for 30 days; the API cannot list older ones.
MAX_SINCE = timedelta(days=30)


@dataclass
class ReconcileReport:
    """What a reconcile run found and did."""

    listed: int = 0
    applied: int = 0
    ignored: int = 0
    duplicates: int = 0
    refused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the operator."""
        return (
            f"{self.listed} events: {self.applied} applied, {self.ignored} ignored, "
            f"{self.duplicates} already applied, {len(self.refused)} refused"
        )


def list_events(client: stripe.StripeClient, since: int) -> list[dict[str, Any]]:
    """Every event created at or after ``since`` (Unix seconds), oldest first."""
    page = client.v1.events.list(params={"created": {"gte": since}, "limit": 100})
    found = [event.to_dict() for event in page.auto_paging_iter()]
    return sorted(found, key=lambda e: (e.get("created", 0), str(e.get("id"))))


def reconcile(
    store: Store,
    site: SiteSettings,
    events: list[dict[str, Any]],
    progress: Callable[[int], object] = lambda _n: None,
) -> ReconcileReport:
    """Apply ``events`` once each; refusals are reported, never raised."""
    report = ReconcileReport(listed=len(events))
    for raw in events:
        try:
            result, duplicate = apply_event(store, site, checked_event(raw))
        except HookError as exc:
            report.refused.append(f"{raw.get('id')} ({raw.get('type')}): {exc.message}")
        else:
            if duplicate:
                report.duplicates += 1
            elif result.get("outcome") == "applied":
                report.applied += 1
            else:
                report.ignored += 1
        progress(1)
    return report
