"""Operator CLI for automations: the worker, rule checks and dry runs, billing runs, the outbox.

``shortcodes worker`` runs the automations worker (``--until-idle`` to stop when nothing is due);
``automations check`` validates the rules; ``automations preview RULE CONTACT | --all``
prints what a rule would do without writing anything; ``automations billing-run`` bills every
subscriber for a period (tqdm progress bars); ``outbox redeliver ID`` and ``outbox log ID``.
Every command takes ``--instance``, ``--database-url`` and ``--site`` like the store's commands
(resolved as the host resolves them).
Refusals print ``error: ...`` and exit 1.
"""

from __future__ import annotations

import argparse
import signal
from types import FrameType
from typing import Any

from tqdm import tqdm

from shortcodes.automations import (
    AutomationConfig,
    Worker,
    billing_run,
    load_automations,
    preview,
    preview_all,
    redeliver,
)
from shortcodes.automations.outbox import delivery_log
from shortcodes.commands import common_parser, guarded, settings_of
from shortcodes.errors import InvalidInput, StoreError
from shortcodes.store import Store
from shortcodes.store.migrate import current_revision, head_revision

#: Where an operator finds a message's id.
MESSAGE_ID = "the outbox message's id, as the admin console's Logs and contact pages show it"


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``worker``, ``automations`` and ``outbox``."""
    common = common_parser()

    worker = subparsers.add_parser(
        "worker", help="run due automation steps and deliver the outbox", parents=[common]
    )
    worker.add_argument("--until-idle", action="store_true", help="stop when nothing is due")
    worker.add_argument(
        "--poll", type=float, default=1.0, help="seconds to sleep when idle (default 1)"
    )
    worker.add_argument(
        "--batch", type=int, default=100, help="steps per transaction (default 100)"
    )
    worker.add_argument(
        "--no-deliver", action="store_true", help="leave the outbox to other workers"
    )
    worker.set_defaults(handler=guarded(cmd_worker))

    auto = subparsers.add_parser(
        "automations", help="check, preview and bill with the site's rules"
    )
    group = auto.add_subparsers(dest="automations_command", required=True, metavar="ACTION")
    check = group.add_parser("check", help="validate the rules and list them", parents=[common])
    check.set_defaults(handler=guarded(cmd_check))
    prev = group.add_parser(
        "preview", help="dry run: what RULE would do, writing nothing", parents=[common]
    )
    prev.add_argument("rule", help="the rule's name in site.toml")
    prev.add_argument("contact", nargs="?", help="email or id (the contact to preview for)")
    prev.add_argument("--all", action="store_true", help="every contact instead of one")
    prev.set_defaults(handler=guarded(cmd_preview))
    bill = group.add_parser(
        "billing-run", help="record this period's payment for every subscriber", parents=[common]
    )
    bill.add_argument("--product", required=True, help="the product rules listen for")
    bill.add_argument("--tag", required=True, help="subscribers are the holders of this tag")
    bill.add_argument("--period", required=True, help="billing period label, e.g. 2026-01")
    bill.add_argument("--no-process", action="store_true", help="only record the payments")
    bill.set_defaults(handler=guarded(cmd_billing_run))

    out = subparsers.add_parser(
        "outbox", help="re-deliver outbox messages and read the delivery log"
    )
    ogroup = out.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    again = ogroup.add_parser("redeliver", help="queue a message again, due now", parents=[common])
    again.add_argument("id", type=int, help=MESSAGE_ID)
    again.set_defaults(handler=guarded(cmd_redeliver))
    log = ogroup.add_parser("log", help="every delivery attempt of a message", parents=[common])
    log.add_argument("id", type=int, help=MESSAGE_ID)
    log.set_defaults(handler=guarded(cmd_log))


def _open(args: argparse.Namespace) -> tuple[Store, AutomationConfig]:
    settings = settings_of(args)
    config = load_automations(settings.require_site())
    store = Store.from_url(settings.database_url, site=config.actions, pool_size=4)
    if current_revision(store.engine) != head_revision():
        store.close()
        raise StoreError("the database is not up to date: run `shortcodes db upgrade` first")
    return store, config


def cmd_worker(args: argparse.Namespace) -> int:
    """``worker``: run until stopped (SIGTERM/SIGINT end it after the current pass)."""
    store, config = _open(args)
    with store:
        store.sync_tags()
        worker = Worker(
            store,
            config,
            settings_of(args).instance_path,
            batch=args.batch,
            deliver=not args.no_deliver,
        )

        def stop(_signum: int, _frame: FrameType | None) -> None:
            worker.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        total = worker.run(until_idle=args.until_idle, poll=args.poll, survive_db_errors=True)
    print(
        f"worker {worker.ident}: {total.dispatched} events, {total.steps} steps, "
        f"{total.matured} lots available, {total.expired} expired, {total.delivered} deliveries"
        + (f"; {worker.errors} database errors survived" if worker.errors else "")
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``automations check``: every rule with its trigger and step count."""
    config = load_automations(settings_of(args).require_site())
    for rule in config.rules.values():
        cond = f" if {rule.conditions}" if rule.conditions else ""
        does = [f"{len(rule.steps)} step(s)"] if rule.steps or rule.drip is None else []
        if rule.drip is not None:
            access = " or ".join(rule.drip.access)
            does.append(f"a drip of {len(rule.drip.items)} item(s) while holding {access}")
        print(f"{rule.name}: {rule.trigger.describe()}{cond} -> {' and '.join(does)}")
    print(f"{len(config.rules)} rule(s) ok in {config.file}")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    """``automations preview RULE CONTACT`` or ``automations preview RULE --all``."""
    if bool(args.contact) == bool(args.all):
        raise InvalidInput("name one CONTACT, or pass --all (not both)")
    store, config = _open(args)
    with store:
        found = (
            preview_all(store, config, args.rule)
            if args.all
            else [preview(store, config, args.rule, args.contact)]
        )
        for result in found:
            print("\n".join(result.lines()))
    return 0


def cmd_billing_run(args: argparse.Namespace) -> int:
    """``automations billing-run``: record the payments, then run the rules they trigger."""
    store, config = _open(args)
    with store:
        bar: Any = tqdm(
            desc=f"billing {args.product} {args.period}", unit=" subscribers", disable=None
        )
        with bar:
            report = billing_run(store, args.product, args.period, args.tag, progress=bar.update)
        print(
            f"{report.subscribers} subscribers: {report.billed} billed, {report.already} already billed for {args.period}"
        )
        if args.no_process or not report.billed:
            return 0
        worker = Worker(store, config, settings_of(args).instance_path, batch=200)
        done = 0  # counted here: a disabled bar (no terminal) counts nothing
        steps: Any = tqdm(desc="running rules", unit=" steps", disable=None)
        with steps:
            while True:
                stats = worker.run_once()
                steps.update(stats.steps)
                done += stats.steps
                if not stats.busy:
                    break
        print(f"rules done: {done} steps")
    return 0


def cmd_redeliver(args: argparse.Namespace) -> int:
    """``outbox redeliver ID``."""
    store, _config = _open(args)
    with store:
        before = redeliver(store, args.id)
    print(f"message {args.id} ({before}) queued for delivery again")
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    """``outbox log ID``."""
    store, _config = _open(args)
    with store:
        rows = delivery_log(store, args.id)
    for row in rows:
        status = "ok" if row.ok else "failed"
        print(
            f"{row.created_at:%Y-%m-%d %H:%M:%S}  attempt {row.attempt}  {status}  {row.worker}  {row.detail}"
        )
    if not rows:
        print(f"no delivery attempts recorded for message {args.id}")
    return 0
