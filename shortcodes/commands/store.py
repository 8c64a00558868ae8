"""Operator CLI for the store: database, contacts, tags, credits, the ledger and actionsets.

``shortcodes db upgrade``, ``contacts add/list/show/import/unlock``,
``tags create/list/apply/remove``, ``credits add/debit``, ``ledger history/verify`` and
``actions run``. One convention names the contact: it is the first positional argument after the
action (``tags apply CONTACT TAG``, ``credits add CONTACT AMOUNT``, ``actions run CONTACT
ACTION``), an email or an id. Every command takes
``--instance`` (the folder holding ``shortcodes.db``), ``--database-url`` and ``--site`` (the site
folder, or its ``site.toml``, declaring credit fields, tags and actionsets), resolved as the host
resolves them (:mod:`shortcodes.host.settings`). Refusals print
``error: ...`` and exit 1; bad usage exits 2; ``ledger verify`` exits 1 when a balance disagrees.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tqdm import tqdm

from shortcodes.commands import Handler, common_parser, guarded, settings_of
from shortcodes.errors import StoreError
from shortcodes.host.settings import Settings
from shortcodes.membership import vocabulary as vocab
from shortcodes.membership.actionsets import SiteActions
from shortcodes.membership.config import load_config_file
from shortcodes.store import Actor, Store, console, ledger
from shortcodes.store.contacts import normalize_email
from shortcodes.store.grants import CATEGORIES, GrantSpec
from shortcodes.store.migrate import current_revision, head_revision
from shortcodes.store.session import run_read, to_db_time

ADMIN = Actor("admin", "cli")
#: The help of the arguments every command names the same way.
CONTACT = "the contact: email or id"
TAG = "the tag: name or id"
FIELD = "the credit field (default: _Credits)"
MAX_PER_PAGE = 1000
IMPORT_FORMAT = """\
The CSV file (UTF-8, a header row, comma-separated):
  email      required; one row per contact, new to the database and to the file
  name       the contact's name
  password   a password to hash (leave empty for none)
  tags       tag names separated by ';' (each must exist)
  _Credits   one column per credit field of the site, spelled as declared in [credits]
             (with its underscore): a whole number of credits, entered through the ledger
  any other  a custom field (letters, digits, underscores); a column named like a credit
             field without its spelling (e.g. 'credits') is refused, not imported as a field
All rows are checked first; with any bad row nothing is written unless --skip-bad.

example:
  email,name,tags,_Credits,City
  ann@example.com,Ann,Owns Course B;Gold,120,Paris
"""


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``db``, ``contacts``, ``tags``, ``credits``, ``ledger`` and ``actions``."""
    common = common_parser()
    _db(subparsers, common)
    _contacts(subparsers, common)
    _tags(subparsers, common)
    _credits(subparsers, common)
    _ledger(subparsers, common)
    _actions(subparsers, common)


# -- argument types -------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """An argparse type: a whole number greater than zero."""
    if not (text.isdigit() and text.isascii()) or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number greater than 0, got {text!r}")
    return int(text)


def key_value(text: str) -> tuple[str, str]:
    """An argparse type: ``NAME=VALUE``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def _group(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def _cmd(
    group: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    common: argparse.ArgumentParser,
    handler: Handler,
) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help_text, description=help_text, parents=[common])
    parser.set_defaults(handler=guarded(handler))
    return parser


# -- the commands ----------------------------------------------------------------------------------


def _db(sub: Any, common: argparse.ArgumentParser) -> None:
    group = _group(sub, "db", "create or upgrade the database")
    _cmd(
        group,
        "upgrade",
        "apply every pending migration, then create the site's tags",
        common,
        cmd_db_upgrade,
    )


def _contacts(sub: Any, common: argparse.ArgumentParser) -> None:
    group = _group(sub, "contacts", "add, show and import contacts")
    add = _cmd(group, "add", "add a contact", common, cmd_contacts_add)
    add.add_argument("email", help="the new contact's email (unique)")
    add.add_argument("--name", default="", help="the display name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument(
        "--field", action="append", type=key_value, default=[], metavar="NAME=VALUE",
        help="a contact field to set (repeatable)",
    )  # fmt: skip
    add.add_argument("--tag", action="append", default=[], help="a tag to apply (repeatable)")
    listing = _cmd(group, "list", "list contacts, newest first", common, cmd_contacts_list)
    listing.add_argument("--search", default="", help="part of the name or email")
    listing.add_argument("--tag", help="only contacts holding this tag (name or id)")
    listing.add_argument("--page", type=positive_int, default=1, help="which page, from 1")
    listing.add_argument("--per-page", type=positive_int, default=50, help="contacts per page")
    show = _cmd(group, "show", "show a contact: tags, fields, balances", common, cmd_contacts_show)
    show.add_argument("contact", help=CONTACT)
    imp = _cmd(group, "import", "import contacts from a CSV file", common, cmd_contacts_import)
    imp.epilog = IMPORT_FORMAT
    imp.formatter_class = argparse.RawDescriptionHelpFormatter
    imp.add_argument("file", type=Path, help="the CSV file (format below)")
    imp.add_argument(
        "--skip-bad", action="store_true", help="import the good rows even if some are rejected"
    )
    unlock = _cmd(
        group, "unlock", "forget an email's failed logins (lift its login lock)", common,
        cmd_contacts_unlock,
    )  # fmt: skip
    unlock.add_argument("email", help="the email whose login lock to lift")


def _tags(sub: Any, common: argparse.ArgumentParser) -> None:
    group = _group(sub, "tags", "create, apply and remove tags")
    create = _cmd(group, "create", "create a tag", common, cmd_tags_create)
    create.add_argument("name", help="the tag's name (unique)")
    create.add_argument("--category", default="", help="a category to group tags by")
    listing = _cmd(
        group, "list", "list tags and how many contacts hold each", common, cmd_tags_list
    )
    listing.add_argument("--category", help="only tags of this category")
    listing.add_argument("--held", action="store_true", help="only tags someone holds")
    apply = _cmd(group, "apply", "apply a tag to a contact", common, cmd_tags_apply)
    apply.add_argument("contact", help=CONTACT)
    apply.add_argument("tag", help=TAG)
    apply.add_argument("--for", dest="duration", help="grant for a time, e.g. 14d or 24h")
    remove = _cmd(group, "remove", "remove a tag from a contact", common, cmd_tags_remove)
    remove.add_argument("contact", help=CONTACT)
    remove.add_argument("tag", help=TAG)


def _credits(sub: Any, common: argparse.ArgumentParser) -> None:
    group = _group(sub, "credits", "add or debit credits (each change is a ledger entry)")
    for name, handler in (("add", cmd_credits_add), ("debit", cmd_credits_debit)):
        cmd = _cmd(group, name, f"{name} credits", common, handler)
        cmd.add_argument("contact", help=CONTACT)
        # Checked against the field's decimals by the store ("2.5" needs decimals >= 1).
        cmd.add_argument(
            "amount", type=amount_arg, help="credits, e.g. 5 or 2.5 on a field with decimals"
        )
        cmd.add_argument("--field", default="_Credits", help=FIELD)
        cmd.add_argument("--reason", default="", help="shown in the ledger history")
        cmd.add_argument("--key", help="idempotency key: the same key never applies twice")
        if name == "add":
            cmd.add_argument("--category", choices=CATEGORIES, help="default: paid")
            cmd.add_argument("--expires-in", type=duration_arg, help="e.g. 30d, 3mo")
            cmd.add_argument("--starts-in", type=duration_arg, help="pending until, e.g. 14d")


def _ledger(sub: Any, common: argparse.ArgumentParser) -> None:
    group = _group(sub, "ledger", "read and verify the credit ledger")
    hist = _cmd(
        group, "history", "a contact's ledger entries, newest first", common, cmd_ledger_history
    )
    hist.add_argument("contact", help=CONTACT)
    hist.add_argument("--field", help="only this credit field (default: all)")
    hist.add_argument("--limit", type=positive_int, default=20, help="entries per page")
    hist.add_argument("--after", help="the cursor printed under the previous page")
    grants = _cmd(
        group, "grants", "a contact's grants: source, category, left, expiry", common, cmd_grants
    )
    grants.add_argument("contact", help=CONTACT)
    grants.add_argument("--field", help="only this credit field (default: all)")
    grants.add_argument("--all", action="store_true", help="spent and expired grants too")
    _cmd(
        group,
        "verify",
        "replay the ledger; exit 1 if any balance disagrees",
        common,
        cmd_ledger_verify,
    )


def _actions(sub: Any, common: argparse.ArgumentParser) -> None:
    group = _group(sub, "actions", "run the site's actionsets")
    run = _cmd(group, "run", "run an actionset for a contact", common, cmd_actions_run)
    run.add_argument("contact", help=CONTACT)
    run.add_argument("action", help="the actionset's id in site.toml")
    run.add_argument(
        "--param", action="append", type=key_value, default=[], metavar="NAME=VALUE",
        help="a parameter the actionset's steps read (repeatable)",
    )  # fmt: skip
    run.add_argument("--key", help="idempotency key (default: a fresh one)")


# -- handlers --------------------------------------------------------------------------------------


def _site(settings: Settings) -> SiteActions:
    """The site's actionsets; a missing ``./site`` default means none, a named one is an error."""
    if settings.site_named or settings.site_file.is_file():
        return load_config_file(settings.require_site()).actions
    return SiteActions()


def open_store(args: argparse.Namespace, *, migrated: bool = True) -> Store:
    """The store the arguments name; refuses a database that ``db upgrade`` has not prepared."""
    settings = settings_of(args)
    if settings.database_in_instance:
        settings.instance_path.mkdir(parents=True, exist_ok=True)  # the SQLite file's home
    store = Store.from_url(settings.database_url, site=_site(settings), pool_size=2)
    if migrated and current_revision(store.engine) != head_revision():
        store.close()
        raise StoreError("the database is not up to date: run `shortcodes db upgrade` first")
    return store


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """``db upgrade``: migrate, then create the tags the site declares."""
    with open_store(args, migrated=False) as store:
        store.upgrade()
        tags = store.sync_tags()
        print(
            f"database at revision {current_revision(store.engine)}; {len(tags)} site tags present"
        )
    return 0


def cmd_contacts_add(args: argparse.Namespace) -> int:
    """``contacts add EMAIL``."""
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    with open_store(args) as store:
        tags = [store.get_tag(t) for t in args.tag]  # check every tag before writing anything
        contact_id = store.add_contact(args.email, args.name, password, dict(args.field))
        for tag in tags:
            store.apply_tag(contact_id, tag, source="cli")
        print(f"contact {contact_id} {normalize_email(args.email)}")
    return 0


def cmd_contacts_show(args: argparse.Namespace) -> int:
    """``contacts show EMAIL``."""
    with open_store(args) as store:
        contact = store.get_contact(args.contact)
    print(f"id: {contact.id}\nemail: {contact.email}")
    print("tags: " + (", ".join(f"{t.name} ({t.id})" for t in contact.tags) or "-"))
    for name, value in contact.fields.items():
        print(f"{name}: {value}")
    return 0


def cmd_contacts_list(args: argparse.Namespace) -> int:
    """``contacts list [--search TEXT] [--tag TAG]``: one line per contact, then the page."""
    if args.per_page > MAX_PER_PAGE:
        raise StoreError(f"--per-page is at most {MAX_PER_PAGE}")
    with open_store(args) as store:
        tag_id = store.get_tag(args.tag).id if args.tag else None
        now = to_db_time(store.clock())
        listing = run_read(
            store.engine,
            lambda conn: console.contact_list(
                conn, args.search, tag_id, args.page, args.per_page, now
            ),
        )
    for row in listing.rows:
        print(f"{row.id:>8}  {row.email:<40} {row.name}")
    print(f"page {listing.page} of {listing.pages} ({listing.total} contacts)")
    return 0


def cmd_tags_list(args: argparse.Namespace) -> int:
    """``tags list [--category C] [--held]``: id, name, category and how many hold it now."""
    with open_store(args) as store:
        now = to_db_time(store.clock())
        rows = run_read(store.engine, lambda conn: console.tag_list(conn, now))
    wanted = (args.category or "").casefold()
    for row in rows:
        if (wanted and row.category.casefold() != wanted) or (args.held and not row.holders):
            continue
        print(f"{row.id:>6}  {row.name:<32} {row.category or '-':<12} {row.holders} holding")
    return 0


def cmd_contacts_unlock(args: argparse.Namespace) -> int:
    """``contacts unlock EMAIL``: the login throttle forgets the email's failures."""
    with open_store(args) as store:
        cleared = store.login_throttle().clear(args.email)
    print(f"forgot {cleared} failed login{'' if cleared == 1 else 's'} of {args.email}")
    return 0


def cmd_contacts_import(args: argparse.Namespace) -> int:
    """``contacts import FILE.csv``: exit 1 when any row was rejected."""
    with open_store(args) as store:
        report = store.import_contacts(args.file, skip_bad=args.skip_bad, progress=_bar(args.file))
    for rejected in report.rejected:
        who = f" ({rejected.email})" if rejected.email else ""
        print(f"{args.file}:{rejected.line}: rejected{who}: {rejected.reason}", file=sys.stderr)
    if report.rejected and not args.skip_bad:
        print(
            f"{len(report.rejected)} of {report.rows} rows rejected; nothing imported "
            "(fix them, or pass --skip-bad to import the rest)",
            file=sys.stderr,
        )
        return 1
    print(f"imported {report.imported} of {report.rows} rows; rejected {len(report.rejected)}")
    return 1 if report.rejected else 0


def _bar(path: Path) -> Callable[[Iterable[Any]], Iterable[Any]]:
    passes = iter(("checking", "writing"))

    def wrap(items: Iterable[Any]) -> Iterable[Any]:
        # tqdm draws on a terminal only; piped output (tests, cron) stays clean.
        bar: Iterable[Any] = tqdm(
            items, desc=f"{path.name}: {next(passes, 'rows')}", unit=" rows", disable=None
        )
        return bar

    return wrap


def cmd_tags_create(args: argparse.Namespace) -> int:
    """``tags create NAME``."""
    with open_store(args) as store:
        tag = store.create_tag(args.name, args.category)
    print(f"tag {tag.id} {tag.name}")
    return 0


def cmd_tags_apply(args: argparse.Namespace) -> int:
    """``tags apply CONTACT TAG [--for 14d]``."""
    with open_store(args) as store:
        if args.duration:
            changed = store.grant(args.contact, args.tag, args.duration, source="cli")
        else:
            changed = store.apply_tag(args.contact, args.tag, source="cli")
    print("applied" if changed else "already held")
    return 0


def cmd_tags_remove(args: argparse.Namespace) -> int:
    """``tags remove CONTACT TAG``."""
    with open_store(args) as store:
        changed = store.remove_tag(args.contact, args.tag, source="cli")
    print("removed" if changed else "not held")
    return 0


def cmd_credits_add(args: argparse.Namespace) -> int:
    """``credits add CONTACT AMOUNT``."""
    return _money(args, "credit")


def cmd_credits_debit(args: argparse.Namespace) -> int:
    """``credits debit CONTACT AMOUNT``."""
    return _money(args, "debit")


def _money(args: argparse.Namespace, kind: str) -> int:
    reason = args.reason or f"{kind} (cli)"
    with open_store(args) as store:
        if kind == "credit":
            result = store.credit(
                args.contact, args.amount, args.field, key=args.key, reason=reason,
                actor=ADMIN, grant=_grant_spec(store, args),
            )  # fmt: skip
        else:
            result = store.debit(
                args.contact, args.amount, args.field, key=args.key, reason=reason, actor=ADMIN
            )
        field = ledger.check_credit_field(store.credit_fields, args.field)
        balance = store.site.policy(field).show(next(iter(result.balances.values())))
    note = " (already applied earlier with this key)" if result.replayed else ""
    print(f"{field}: {balance}{note}")
    return 0


def amount_arg(text: str) -> Decimal:
    """A positive amount as typed (``5``, ``2.5``), exactly; the field's decimals are the
    store's check (``2.5`` on a whole-number field is refused there, with the rule)."""
    if not AMOUNT_TEXT.fullmatch(text.strip()) or not any(c in "123456789" for c in text):
        raise argparse.ArgumentTypeError(f"must be a number greater than 0, got {text!r}")
    return Decimal(text.strip())


AMOUNT_TEXT = re.compile(r"[0-9]{1,16}(\.[0-9]{1,16})?")


def duration_arg(text: str) -> vocab.Duration:
    """A ``--expires-in``/``--starts-in`` duration (``30d``, ``3mo``...)."""
    try:
        return vocab.duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _grant_spec(store: Store, args: argparse.Namespace) -> GrantSpec:
    now = to_db_time(store.clock())
    starts = None if args.starts_in is None else args.starts_in.after(now)
    expires = None if args.expires_in is None else args.expires_in.after(starts or now)
    return GrantSpec("admin", args.category, starts_at=starts, expires_at=expires)


def cmd_grants(args: argparse.Namespace) -> int:
    """``ledger grants CONTACT``: one line per grant, newest first."""
    with open_store(args) as store:
        found = store.grants(args.contact, args.field, include_spent=args.all)
        shown = [(g, store.site.policy(g.field)) for g in found]
        owed = {
            name: store.site.policy(name).show(units)
            for name, units in sorted(store.debts(args.contact).items())
            if args.field is None or args.field.casefold() == name.casefold()
        }
    if not found:
        print("no grants")
    for g, policy in shown:
        left = f"{policy.show(g.remaining)}/{policy.show(g.amount)}"
        starts = f" starts {_when(g.starts_at)}" if g.status == "pending" else ""
        expires = f" expires {_when(g.expires_at)}" if g.expires_at else " never expires"
        print(
            f"{g.id:>8}  {g.field:<12} {left:>15}  {g.status:<8} {g.source}/{g.category}"
            f"{starts}{expires}  {g.reason}"
        )
    for name, amount in owed.items():
        print(f"{name} owes {amount}: a refund took it below zero; the next credit settles it")
    return 0


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def cmd_ledger_history(args: argparse.Namespace) -> int:
    """``ledger history CONTACT``."""
    with open_store(args) as store:
        page = store.history(args.contact, args.field, args.limit, args.after)
    for e in page.entries:
        stamp = e.created_at.strftime("%Y-%m-%d %H:%M:%S")
        change = f"{e.field:<12} {e.delta:>+8} = {e.balance_after:<8}"
        print(f"{e.id:>8}  {stamp}  {change} {e.actor_kind}:{e.actor_id}  {e.reason}")
    if page.next_cursor:
        print(f"more: --after {page.next_cursor}")
    return 0


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    """``ledger verify``: exit 1 and list every disagreement."""
    with open_store(args) as store:
        report = store.verify()
    for problem in report.problems:
        print(f"contact {problem.contact_id} {problem.field}: {problem.message}")
    status = "ok" if report.ok else f"{len(report.problems)} problem(s)"
    print(f"checked {report.accounts} balances and {report.entries} entries: {status}")
    return 0 if report.ok else 1


def cmd_actions_run(args: argparse.Namespace) -> int:
    """``actions run CONTACT ACTION``: exit 1 when the run was refused."""
    with open_store(args) as store:
        result = store.run_actionset(args.action, args.contact, dict(args.param), args.key, ADMIN)
    print(result.message + (" (replayed: it already ran with this key)" if result.replayed else ""))
    return 0 if result.ok else 1
