"""Operator CLI for loyalty points: ``points show``, ``points award`` and ``points remove``.

The contact is the first positional argument, as in the store's commands (an email or an id),
and every command takes ``--instance``, ``--database-url`` and ``--site``. The points are the
``Points`` grants of :mod:`shortcodes.automations.loyalty`, read and changed through the same
functions the worker and the webhooks use; ``[loyalty]`` of the site sets the wait, expiry and
stages. Refusals print ``error: ...`` and exit 1.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import datetime
from typing import Any

from shortcodes.automations import loyalty
from shortcodes.automations.rules import LoyaltyConfig
from shortcodes.commands import common_parser, settings_of
from shortcodes.commands.store import ADMIN, CONTACT, _cmd, _group, open_store, positive_int
from shortcodes.membership import vocabulary as vocab
from shortcodes.membership.config import load_config_file
from shortcodes.store import Store, contacts
from shortcodes.store.session import Tx, run_read, to_db_time


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``points show|award|remove``."""
    common = common_parser()
    group = _group(subparsers, "points", "a contact's loyalty points: show, award, remove")
    show = _cmd(
        group, "show", "pending, available and expiring points, lifetime points and stage",
        common, cmd_points_show,
    )  # fmt: skip
    show.add_argument("contact", help=CONTACT)
    show.add_argument(
        "--within", type=_duration, default=loyalty.EXPIRING_WITHIN,
        help="count the points expiring within this long (default: 30d)",
    )  # fmt: skip
    award = _cmd(group, "award", "award points (pending, or available now)", common, cmd_award)
    award.add_argument("contact", help=CONTACT)
    award.add_argument("points", type=positive_int, help="how many points (a whole number)")
    award.add_argument("--reason", required=True, help="shown in the ledger history")
    award.add_argument(
        "--available-after", type=_wait,
        help='"now", or how long they stay pending (default: [loyalty] available_after)',
    )  # fmt: skip
    award.add_argument("--key", help="idempotency key: the same key never applies twice")
    remove = _cmd(group, "remove", "take points back (never below zero)", common, cmd_remove)
    remove.add_argument("contact", help=CONTACT)
    remove.add_argument("points", type=positive_int, help="how many points at most")
    remove.add_argument("--reason", required=True, help="shown in the ledger history")
    remove.add_argument("--key", help="idempotency key: the same key never applies twice")


def _duration(text: str) -> vocab.Duration:
    try:
        return vocab.duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _wait(text: str) -> loyalty.Wait:
    try:
        return vocab.delay_or_now(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _config(args: argparse.Namespace) -> LoyaltyConfig:
    return load_config_file(settings_of(args).require_site()).automations.loyalty


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime(" (next %Y-%m-%d %H:%M UTC)")


def cmd_points_show(args: argparse.Namespace) -> int:
    """``points show CONTACT [--within 30d]``: the figures, one per line."""
    cfg = _config(args)
    with open_store(args) as store:
        now = to_db_time(store.clock())

        def read(conn: Any) -> tuple[int, loyalty.PointsSummary]:
            contact_id = contacts.resolve_contact(conn, args.contact)
            return contact_id, loyalty.summary(conn, cfg, contact_id, now, args.within)

        contact_id, s = run_read(store.engine, read)
    print(f"contact {contact_id}: stage {s.stage or '-'}, {s.lifetime} lifetime points")
    print(f"available: {s.available}")
    print(f"pending: {s.pending}{_when(s.next_available)}")
    print(f"expiring within {s.within}: {s.expiring}{_when(s.next_expiry)}")
    return 0


def _changed(store: Store, args: argparse.Namespace, kind: str) -> str:
    """Award or remove in one transaction; the line to print."""
    cfg = _config(args)
    key = args.key or f"cli:{uuid.uuid4().hex}"

    def change(tx: Tx) -> str:
        contact_id = contacts.lock_contact(tx, args.contact)
        if kind == "award":
            fresh = loyalty.earn(
                tx, cfg, contact_id, args.points, key, args.reason,
                wait=args.available_after, actor=ADMIN,
            )  # fmt: skip
            return "awarded" if fresh else "already awarded earlier with this key"
        done = loyalty.remove(tx, cfg, contact_id, args.points, key, args.reason, ADMIN)
        again = " (already applied earlier with this key)" if done.replayed else ""
        pending = f" ({done.from_pending} of them pending)" if done.from_pending else ""
        return f"removed {done.removed} of {args.points}{pending}{again}"

    return store.run_in_transaction(change)


def cmd_award(args: argparse.Namespace) -> int:
    """``points award CONTACT POINTS --reason TEXT``."""
    with open_store(args) as store:
        print(_changed(store, args, "award"))
    return cmd_points_show(_with_default_within(args))


def cmd_remove(args: argparse.Namespace) -> int:
    """``points remove CONTACT POINTS --reason TEXT``."""
    with open_store(args) as store:
        print(_changed(store, args, "remove"))
    return cmd_points_show(_with_default_within(args))


def _with_default_within(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "within": loyalty.EXPIRING_WITHIN})
