"""Store facade: the one interface the host, the CLI and automations use for contacts and credits.

``Store.from_url(url)`` gives an object whose methods are single operations, each its own
transaction with retries (the host and the CLI find the URL with ``host.settings``). Automations
that must combine several changes atomically use :meth:`Store.run_in_transaction` with the
functions of ``contacts``, ``ledger`` and ``runner`` (events are recorded by those functions).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from functools import cache, partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection
from werkzeug.security import check_password_hash, generate_password_hash

from shortcodes.context import Contact, Tag
from shortcodes.errors import (
    InsufficientCredits,
    InvalidInput,
    RunRefused,
    UnknownAction,
)
from shortcodes.membership import vocabulary as vocab
from shortcodes.membership.actionsets import Actionset, SiteActions
from shortcodes.store import contacts, importer, ledger, refunds, runner, schema
from shortcodes.store import grants as grant_store
from shortcodes.store.database import dispose, make_engine
from shortcodes.store.events import Event, events_after
from shortcodes.store.grants import Grant, GrantSpec
from shortcodes.store.identity import Accounts
from shortcodes.store.importer import ImportReport, Progress
from shortcodes.store.ledger import HistoryPage, LedgerResult
from shortcodes.store.migrate import upgrade
from shortcodes.store.runner import RunResult, StepHook
from shortcodes.store.session import (
    SYSTEM,
    Actor,
    Clock,
    Tx,
    run_read,
    run_write,
    system_clock,
    to_db_time,
)
from shortcodes.store.throttle import LoginPolicy, LoginThrottle
from shortcodes.store.verify import VerifyReport
from shortcodes.store.verify import verify as verify_ledger

T = TypeVar("T")


@cache
def _dummy_hash() -> str:
    """Checked against when an email is unknown (see ``check_password``); matches no password."""
    return generate_password_hash(uuid.uuid4().hex)


TagRef = int | str | Tag


class Store:
    """Contacts, tags, the credit ledger and actionsets over one SQLAlchemy engine."""

    def __init__(
        self, engine: Engine, *, site: SiteActions | None = None, clock: Clock = system_clock
    ) -> None:
        self.engine = engine
        self.site = site or SiteActions()
        self.clock = clock
        self.credit_fields = frozenset(self.site.credit_fields)
        # Tags are never renamed or deleted, so a name/id -> Tag cache can only be stale by absence.
        self._tags: dict[str, Tag] = {}
        self._tags_lock = threading.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        site: SiteActions | None = None,
        clock: Clock = system_clock,
        pool_size: int = 10,
    ) -> Store:
        """A store on the database named by ``url`` (sqlite:///file or postgresql://...)."""
        return cls(make_engine(url, pool_size=pool_size), site=site, clock=clock)

    def close(self) -> None:
        """Close every pooled connection (and SQLite's lock files)."""
        dispose(self.engine)

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- schema and site -------------------------------------------------------------------------

    def upgrade(self) -> None:
        """Create or upgrade the schema to the newest migration (safe to run again)."""
        upgrade(self.engine)

    def sync_tags(self) -> list[Tag]:
        """Create every tag the site declares (existing ones are kept); returns them all."""
        return self.run_in_transaction(
            lambda tx: [contacts.create_tag(tx, n, c) for n, c in self.site.tags.items()]
        )

    def run_in_transaction(self, work: Callable[[Tx], T]) -> T:
        """Run ``work(tx)`` in one write transaction with retries (so it may run more than once).

        For automations that combine several operations atomically.
        """
        return run_write(self.engine, self.clock, self.credit_fields, work, self.site.policies)

    def _read(self, work: Callable[[Connection], T]) -> T:
        return run_read(self.engine, work)

    # -- contacts and tags -----------------------------------------------------------------------

    def add_contact(
        self,
        email: str,
        name: str = "",
        password: str | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> int:
        """Create a contact (password hashed); returns its id. Refuses a duplicate email."""
        hashed = generate_password_hash(password) if password else None
        return self.run_in_transaction(
            lambda tx: contacts.add_contact(tx, email, name, hashed, fields or {})
        )

    def contact_id(self, ref: int | str) -> int:
        """The id of the contact named by id or email (UnknownContact if none)."""
        return self._read(lambda conn: contacts.resolve_contact(conn, ref))

    def get_contact(self, ref: int | str) -> Contact:
        """A snapshot of the contact for rendering: held tags, fields and credit balances."""
        now = to_db_time(self.clock())

        def read(conn: Connection) -> Contact:
            contact_id = contacts.resolve_contact(conn, ref)
            return contacts.snapshot(
                conn, contact_id, now, self.site.credit_fields, self.site.policies
            )

        # One snapshot on PostgreSQL too: never a new balance beside old tags, or the reverse.
        return run_read(self.engine, read, snapshot=True)

    def check_password(self, email: str, password: str) -> Contact | None:
        """The contact if ``password`` is theirs, else None (also for unknown emails)."""
        t = schema.contacts
        query = select(t.c.id, t.c.password_hash).where(t.c.email == vocab.canonical_email(email))
        row = self._read(lambda conn: conn.execute(query).first())
        # Hash even for an unknown email, so the answer's timing does not say which emails exist.
        if row is None or not row.password_hash:
            check_password_hash(_dummy_hash(), password)
            return None
        if not check_password_hash(row.password_hash, password):
            return None
        return self.get_contact(int(row.id))

    def login_throttle(self, policy: LoginPolicy | None = None) -> LoginThrottle:
        """Password checks limited per account and address (see :mod:`.throttle`)."""
        return LoginThrottle(self, policy or LoginPolicy())

    def accounts(self) -> Accounts:
        """Sessions, sign-ups, password and email changes (see :mod:`.identity`)."""
        return Accounts(self)

    def create_tag(self, name: str, category: str = "") -> Tag:
        """Create a tag (or return the one with that name, case-insensitively)."""
        return self.run_in_transaction(lambda tx: contacts.create_tag(tx, name, category))

    def get_tag(self, ref: TagRef) -> Tag:
        """The tag named by id or name (UnknownTag if none)."""
        return self._lookup_tag(None, ref)

    def _lookup_tag(self, conn: Connection | None, ref: TagRef) -> Tag:
        # Inside a transaction the lookup must use that transaction's connection: taking a
        # second one from the pool while holding the first can exhaust the pool under load.
        cache_key = str(ref.id if isinstance(ref, Tag) else ref).strip().casefold()
        tag = self._tags.get(cache_key)
        if tag is None:
            if conn is None:
                tag = self._read(lambda c: contacts.resolve_tag(c, ref))
            else:
                tag = contacts.resolve_tag(conn, ref)
            with self._tags_lock:
                self._tags[cache_key] = tag
        return tag

    def apply_tag(self, contact: int | str, tag: TagRef, source: str = "") -> bool:
        """Give the contact a tag for good; True if they did not hold it."""
        found = self.get_tag(tag)
        return self.run_in_transaction(
            lambda tx: contacts.apply_tag(tx, contacts.lock_contact(tx, contact), found, source)
        )

    def grant(
        self, contact: int | str, tag: TagRef, duration: timedelta | str, source: str = ""
    ) -> bool:
        """Give the contact a tag that expires after ``duration`` ("14d", "1mo" or a timedelta)."""
        if isinstance(duration, timedelta):
            if duration <= timedelta(0):
                raise InvalidInput(f"a grant needs a positive duration, got {duration!r}")
            length = vocab.Duration(str(duration), seconds=int(duration.total_seconds()))
        else:
            try:
                length = vocab.duration(duration)
            except ValueError as exc:
                raise InvalidInput(str(exc)) from exc
        found = self.get_tag(tag)

        def work(tx: Tx) -> bool:
            contact_id = contacts.lock_contact(tx, contact)
            return contacts.apply_tag(tx, contact_id, found, source, length.after(tx.now))

        return self.run_in_transaction(work)

    def remove_tag(self, contact: int | str, tag: TagRef, source: str = "") -> bool:
        """Take a tag away; True if the contact held it."""
        found = self.get_tag(tag)
        return self.run_in_transaction(
            lambda tx: contacts.remove_tag(tx, contacts.lock_contact(tx, contact), found, source)
        )

    def set_field(self, contact: int | str, name: str, value: Any) -> None:
        """Set a custom field (never a credit balance: those change only through the ledger)."""
        self.run_in_transaction(
            lambda tx: contacts.set_field(tx, contacts.lock_contact(tx, contact), name, value)
        )

    # -- the ledger ------------------------------------------------------------------------------

    def credit(
        self,
        contact: int | str,
        amount: int | Decimal | str,
        field: str = "_Credits",
        *,
        key: str | None = None,
        reason: str = "",
        actor: Actor = SYSTEM,
        grant: GrantSpec | None = None,
    ) -> LedgerResult:
        """Add credits as one grant (``grant``: source, category, start, expiry; an ``admin``
        grant under the field's policy when None), once per ``key`` (a fresh key when None)."""
        key = _fresh_key() if key is None else key
        return self.run_in_transaction(
            lambda tx: ledger.credit(tx, contact, field, amount, key, reason, actor, grant)
        )

    def debit(
        self,
        contact: int | str,
        amount: int | Decimal | str,
        field: str = "_Credits",
        *,
        key: str | None = None,
        reason: str = "",
        actor: Actor = SYSTEM,
    ) -> LedgerResult:
        """Take credits, once per ``key``; InsufficientCredits (nothing written) below zero."""
        key = _fresh_key() if key is None else key
        return self.run_in_transaction(
            lambda tx: ledger.debit(tx, contact, field, amount, key, reason, actor)
        )

    def transfer(
        self,
        contact: int | str,
        amount: int,
        from_field: str,
        to_field: str,
        *,
        key: str | None = None,
        reason: str = "",
        actor: Actor = SYSTEM,
    ) -> LedgerResult:
        """Move credits between two fields of one contact, as two entries in one transaction."""
        key = _fresh_key() if key is None else key
        return self.run_in_transaction(
            lambda tx: ledger.transfer(
                tx, contact, from_field, to_field, amount, key, reason, actor
            )
        )

    def refund(
        self,
        entry_ids: Sequence[int],
        *,
        key: str | None = None,
        reason: str = "refund",
        actor: Actor = SYSTEM,
    ) -> LedgerResult:
        """Reverse exactly the named entries, each at most once."""
        key = _fresh_key() if key is None else key
        ids = list(entry_ids)
        return self.run_in_transaction(lambda tx: ledger.refund(tx, ids, key, reason, actor))

    def refund_grant(
        self,
        operation_key: str,
        contact: int | str,
        amount: int | Decimal | str,
        field: str = "_Credits",
        *,
        key: str | None = None,
        reason: str = "refund",
        actor: Actor = SYSTEM,
    ) -> refunds.GrantRefund:
        """Take back ``amount`` credits of what the operation ``operation_key`` granted, by the
        field's clawback policy (see :func:`refunds.refund_grant`), once per ``key``."""
        key = _fresh_key() if key is None else key

        def work(tx: Tx) -> refunds.GrantRefund:
            name = ledger.check_credit_field(tx.credit_fields, field)
            units = ledger.to_units(tx, name, amount)
            contact_id = contacts.lock_contact(tx, contact)
            return refunds.refund_grant(
                tx, operation_key, contact_id, name, units, key, reason, actor
            )

        return self.run_in_transaction(work)

    def balance(self, contact: int | str, field: str = "_Credits") -> int:
        """The cached balance of one field in units (0 if never credited): credits for a field
        without decimals; :meth:`amount` shows it as people read it."""
        name = ledger.check_credit_field(self.credit_fields, field)
        return self._read(
            lambda conn: ledger.balance(conn, contacts.resolve_contact(conn, contact), name)
        )

    def amount(self, contact: int | str, field: str = "_Credits") -> int | Decimal:
        """The balance as people read it: ``Decimal("2.50")`` on a field with two decimals."""
        name = ledger.check_credit_field(self.credit_fields, field)
        return self.site.policy(name).show(self.balance(contact, name))

    def debts(self, contact: int | str) -> dict[str, int]:
        """What the contact owes per credit field, in units (fields in debt only): refunds
        took it below zero (``clawback = "below_zero"``), the next credit settles it."""
        return self._read(lambda conn: ledger.debts(conn, contacts.resolve_contact(conn, contact)))

    def grants(
        self, contact: int | str, field: str | None = None, *, include_spent: bool = False
    ) -> list[Grant]:
        """The contact's grants, newest first (see :func:`grants.listing`)."""
        name = None if field is None else ledger.check_credit_field(self.credit_fields, field)
        return self._read(
            lambda conn: grant_store.listing(
                conn, contacts.resolve_contact(conn, contact), name, include_spent=include_spent
            )
        )

    def history(
        self,
        contact: int | str,
        field: str | None = None,
        limit: int = 20,
        after: str | None = None,
    ) -> HistoryPage:
        """Ledger entries newest first, keyset-paginated by the ``after`` cursor."""
        name = None if field is None else ledger.check_credit_field(self.credit_fields, field)
        return self._read(
            lambda conn: ledger.history(
                conn, contacts.resolve_contact(conn, contact), name, limit, after
            )
        )

    def verify(self) -> VerifyReport:
        """Replay the whole ledger against the cached balances (a consistent snapshot)."""
        return run_read(self.engine, verify_ledger, snapshot=True)

    # -- actionsets ------------------------------------------------------------------------------

    def actionset(self, action: str) -> Actionset:
        """The site's actionset named ``action`` (UnknownAction if none)."""
        found = self.site.actionsets.get(action)
        if found is None:
            raise UnknownAction(f"no actionset {action!r} in {self.site.file}")
        return found

    def run_actionset(
        self,
        action: str,
        contact: int | str,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        actor: Actor = SYSTEM,
        *,
        step_hook: StepHook | None = None,
    ) -> RunResult:
        """Run an actionset once per key (the button's nonce); an overdraft is a refused result.

        A refusal for lack of credits writes nothing and comes back as ``outcome="insufficient"``
        with the message "You need 50 credits; you have 30"; one by the actionset's ``requires``
        / ``blocked_by`` tags comes back as ``outcome="refused"``. Other problems raise
        StoreError.
        """
        definition = self.actionset(action)
        key = _fresh_key() if idempotency_key is None else idempotency_key

        def work(tx: Tx) -> RunResult:
            lookup = partial(self._lookup_tag, tx.conn)
            return runner.run_actionset(
                tx, definition, contact, params or {}, key, actor, lookup, step_hook
            )

        try:
            return self.run_in_transaction(work)
        except InsufficientCredits as exc:
            return RunResult(action, "insufficient", str(exc), balances={exc.field: exc.balance})
        except RunRefused as exc:
            return RunResult(action, "refused", str(exc))

    # -- bulk ----------------------------------------------------------------------------------

    def import_contacts(
        self,
        path: str | os.PathLike[str],
        *,
        skip_bad: bool = False,
        progress: Progress[Any] | None = None,
    ) -> ImportReport:
        """Import contacts from a CSV file (see ``importer``); all or nothing unless ``skip_bad``.

        ``progress`` wraps each pass's iterable (the CLI passes a tqdm bar).
        """
        file = Path(path)
        wrap: Progress[Any] = progress or (lambda items: items)
        rows, report = self._read(
            lambda conn: importer.check_file(conn, file, self.site.credit_fields, wrap)
        )
        if report.rejected and not skip_bad:
            return report
        digest = importer.file_digest(file)
        report.imported = self.run_in_transaction(
            lambda tx: importer.write_rows(tx, rows, digest, wrap)
        )
        return report

    def events_after(self, after_id: int = 0, limit: int = 100) -> list[Event]:
        """Recorded events with ids above ``after_id``, oldest first (the automations feed)."""
        return self._read(lambda conn: events_after(conn, after_id, limit))


def _fresh_key() -> str:
    return f"auto:{uuid.uuid4().hex}"
