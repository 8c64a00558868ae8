"""CLI commands ``stripe reconcile``: apply the Stripe events the webhook missed.

``shortcodes stripe reconcile [--since 3d]`` lists the events of the period from the Stripe API
(``SHORTCODES_STRIPE_SECRET_KEY``, and ``SHORTCODES_STRIPE_API_BASE`` for a test server) and
applies each once, with a progress bar and a summary; refused events are listed and the exit
status is 1 when there is any. Takes ``--instance``, ``--database-url`` and ``--site`` like
every store command.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import stripe
from tqdm import tqdm

from shortcodes.commands import common_parser, guarded, settings_of
from shortcodes.errors import SettingsError
from shortcodes.host.settings import environment
from shortcodes.membership import vocabulary as vocab
from shortcodes.membership.config import load_config
from shortcodes.payments.reconcile import MAX_SINCE, list_events, reconcile
from shortcodes.payments.stripe_client import make_client
from shortcodes.payments.stripe_settings import stripe_settings
from shortcodes.store.facade import Store


def add_commands(sub: Any) -> None:
    """Add ``stripe reconcile`` to the CLI."""
    stripe_cmd = sub.add_parser("stripe", help="payments through Stripe")
    actions = stripe_cmd.add_subparsers(dest="stripe_command", required=True)
    run = actions.add_parser(
        "reconcile",
        parents=[common_parser()],
        help="apply the Stripe events of a period that were missed (idempotent)",
    )
    run.add_argument(
        "--since", default="3d", help="how far back to look: 12h, 3d, 2w (default 3d, at most 30d)"
    )
    run.set_defaults(handler=guarded(cmd_reconcile))


def _since(text: str) -> int:
    try:
        length = vocab.duration(text).approximate()
    except ValueError as exc:
        raise SettingsError(f"--since: {exc}") from None
    if length > MAX_SINCE:
        raise SettingsError("--since: Stripe keeps events for 30 days; use 30d or less")
    return int(time.time() - length.total_seconds())


def cmd_reconcile(args: argparse.Namespace) -> int:
    """List the period's events, apply the missed ones, print a summary."""
    since = _since(args.since)
    settings = settings_of(args)
    config = load_config(settings.require_site().parent)
    client = make_client(stripe_settings(environment()))
    try:
        events = list_events(client, since)
    except stripe.StripeError as exc:
        print(f"error: cannot list events from Stripe: {exc}", file=sys.stderr)
        return 1
    with Store.from_url(settings.database_url, site=config.actions, pool_size=2) as store:
        bar: Any = tqdm(total=len(events), desc="stripe events", unit=" events", disable=None)
        with bar:
            report = reconcile(store, config.host, events, progress=bar.update)
    print(report.summary())
    for line in report.refused:
        print(f"refused: {line}", file=sys.stderr)
    return 1 if report.refused else 0
