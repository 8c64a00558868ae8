"""The automations stage: rules that react to store events, run by a crash-safe worker.

Modules: ``rules`` (site.toml ``[[rules]]``, ``[loyalty]``, ``[automations]``), ``schema``
(tables, migration 0002), ``events`` (events -> rule runs), ``engine`` (steps, exactly once),
``worker`` (the loop, leases, batches), ``outbox`` (email and webhook delivery), ``loyalty``
(points lots and stages), ``billing`` (the monthly billing run), ``preview`` (dry run).
"""

from __future__ import annotations

from shortcodes.automations.billing import BillingReport, billing_run
from shortcodes.automations.dispatch import record_login
from shortcodes.automations.dry_run import Preview, preview, preview_all
from shortcodes.automations.loyalty import PointsSummary
from shortcodes.automations.outbox import Delivery, redeliver
from shortcodes.automations.rules import (
    AutomationConfig,
    LoyaltyConfig,
    Rule,
    Trigger,
    load_automations,
    parse_automations,
)
from shortcodes.automations.worker import PassStats, Worker

__all__ = [
    "AutomationConfig",
    "BillingReport",
    "Delivery",
    "InsufficientPoints",
    "LoyaltyConfig",
    "PassStats",
    "PointsSummary",
    "Preview",
    "Rule",
    "Trigger",
    "Worker",
    "billing_run",
    "load_automations",
    "parse_automations",
    "preview",
    "preview_all",
    "record_login",
    "redeliver",
]
