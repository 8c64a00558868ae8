"""Store actionset runner: one button click, one transaction, exactly once per nonce.

:func:`run_actionset` binds the button's parameters, locks the contact and claims the key,
answers a replayed key with the first run's result, checks the actionset's ``requires`` and
``blocked_by`` tags, skips a purchase the contact already owns, then performs every step inside
the caller's transaction. Any error (an overdraft, an unknown tag, a refusal, a crash) propagates
and the caller's transaction rolls back every step, the claim included; nothing of a failed run is
ever visible. Since a refused or failed run records nothing, its nonce stays unused: the visitor's
retry runs once.

A purchase is on every page view's critical path, so on PostgreSQL its writes take three
statements: lock + claim, balance + entry, and finish + messages + events (data-modifying CTEs).
SQLite, in-process, runs the same writes one statement each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import DateTime, bindparam, select, text, true, update
from sqlalchemy.dialects import postgresql, sqlite

from shortcodes.context import Tag
from shortcodes.errors import (
    ActionsetParamError,
    IdempotencyConflict,
    InvalidInput,
    RunRefused,
    StoreError,
    UnknownContact,
)
from shortcodes.membership import steps
from shortcodes.membership.actionsets import Actionset
from shortcodes.membership.steps import Ref, Step
from shortcodes.membership.vocabulary import Duration
from shortcodes.store import contacts, ledger, schema
from shortcodes.store.entries import apply_delta
from shortcodes.store.events import enqueue_many, event_row, outbox_row, record_events
from shortcodes.store.fastpath import Prepared
from shortcodes.store.grants import GrantSpec
from shortcodes.store.idempotency import check_key, fingerprint
from shortcodes.store.session import Actor, Tx

Outcome = Literal["done", "owned", "insufficient", "refused"]

#: Called before each step with its index and once more after the last one with ``None``: an
#: observer point for tracing, and where the fault-injection tests raise or get killed.
StepHook = Callable[[int, Step | None], None]

# Statements built once (see events.py for why).
_runs = schema.actionset_runs
_FIND_RUN = select(_runs).where(_runs.c.idempotency_key == bindparam("key"))
# The key is claimed by the insert itself: a parallel run with the same key waits on the unique
# index, then finds the row (the contact lock already serializes the usual case).
_CLAIM_RUN = Prepared(
    sqlite.insert(_runs)
    .on_conflict_do_nothing(index_elements=[_runs.c.idempotency_key])
    .returning(_runs.c.id)
)


def _lock_and_claim_statement() -> Prepared:
    """PostgreSQL: lock the contact row, read its email and claim the run's key, in one statement
    (data-modifying CTEs): one round trip where three statements took three. No contact row
    means no row back and nothing inserted; a taken key means a row whose run id is NULL."""
    contacts_ = schema.contacts
    locked = (
        select(contacts_.c.id, contacts_.c.email)
        .where(contacts_.c.id == bindparam("b_contact"))
        .with_for_update()
        .cte("locked")
    )
    columns = [c for c in _runs.c if c.name != "id"]
    values = [
        locked.c.id if c.name == "contact_id" else bindparam(f"r_{c.name}", type_=c.type)
        for c in columns
    ]
    claimed = (
        postgresql.insert(_runs)
        .from_select([c.name for c in columns], select(*values).select_from(locked))
        .on_conflict_do_nothing(index_elements=[_runs.c.idempotency_key])
        .returning(_runs.c.id)
        .cte("claimed")
    )
    return Prepared(
        select(locked.c.id, locked.c.email, claimed.c.id).select_from(
            locked.outerjoin(claimed, true())
        )
    )


_LOCK_AND_CLAIM = _lock_and_claim_statement()

# PostgreSQL: the run's last write as one statement: its row is finished and its queued messages
# and events are inserted from JSON arrays, in order (one round trip where the three took three
# or more). SQLite runs the same three writes as separate statements.
_FINISH_ALL = Prepared(
    text("""
WITH finished AS (
    UPDATE actionset_runs SET outcome = :b_outcome, message = :b_message, result = :b_result
    WHERE id = :b_id
), queued AS (
    INSERT INTO outbox (kind, contact_id, run_id, dedupe_key, payload, status, attempts,
                        next_attempt_at, created_at)
    SELECT m ->> 'kind', (m ->> 'contact_id')::integer, (m ->> 'run_id')::bigint,
           m ->> 'dedupe_key', m -> 'payload', m ->> 'status', (m ->> 'attempts')::integer,
           :b_now, :b_now
    FROM jsonb_array_elements(:b_outbox) WITH ORDINALITY AS o (m, n) ORDER BY n
)
INSERT INTO events (kind, contact_id, run_id, data, created_at)
SELECT e ->> 'kind', (e ->> 'contact_id')::integer, (e ->> 'run_id')::bigint, e -> 'data', :b_now
FROM jsonb_array_elements(:b_events) WITH ORDINALITY AS v (e, n) ORDER BY n
""").bindparams(
        bindparam("b_result", type_=_runs.c.result.type),
        bindparam("b_now", type_=DateTime()),
        bindparam("b_outbox", type_=postgresql.JSONB()),
        bindparam("b_events", type_=postgresql.JSONB()),
    )
)
_FINISH_RUN = Prepared(
    update(_runs)
    .where(_runs.c.id == bindparam("b_id"))
    .values(
        outcome=bindparam("b_outcome"),
        message=bindparam("b_message"),
        result=bindparam("b_result", type_=_runs.c.result.type),
    )
)

#: Credits a button's step adds (a check-in's credit back, say) form an ``actionset`` grant.
ACTIONSET_GRANT = GrantSpec("actionset")
DEFAULT_MESSAGE = "Unlocked {title} — {balance} credits left"
DEFAULT_MESSAGE_NO_DEBIT = "Done: {title}"
OWNED_MESSAGE = "You already own {title}"
REFUSED_MESSAGE = "{title} is not available to you right now"


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a run did, with the sentence to show the visitor."""

    action: str
    outcome: Outcome
    message: str
    run_id: int | None = None
    balances: Mapping[str, int] = field(default_factory=dict)
    redirect: str | None = None
    replayed: bool = False

    @property
    def ok(self) -> bool:
        """True when the visitor got what the button offers (now or by an earlier purchase)."""
        return self.outcome in ("done", "owned")

    def to_json(self) -> dict[str, Any]:
        """The form stored with the run, which replays answer with."""
        return {"balances": dict(self.balances), "redirect": self.redirect}


@dataclass
class _Run:
    """The mutable state of one run while its steps execute: the store's :class:`StepRun`."""

    tx: Tx
    actionset: Actionset
    contact_id: int
    params: dict[str, int | str]
    key: str
    actor: Actor
    tag_lookup: Callable[[str], Tag]
    email: str = ""  # read when the run is claimed
    run_id: int = 0
    index: int = 0  # the step being performed
    balances: dict[str, int] = field(default_factory=dict)  # the fields the run moved
    known: dict[str, int] = field(default_factory=dict)  # every balance the run has seen
    debited: dict[str, int] = field(default_factory=dict)
    redirect: str | None = None
    # The run's balance events and queued messages, written when it finishes (same transaction).
    events: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)

    @property
    def source(self) -> str:
        """Who changed the contact: this actionset."""
        return f"actionset:{self.actionset.name}"

    def arg(self, value: Any) -> Any:
        """A step argument with ``$param`` references replaced by the bound values."""
        return self.params[value.name] if isinstance(value, Ref) else value

    def tag(self, name: str) -> Tag:
        """The tag named ``name``, from the caller's lookup."""
        return self.tag_lookup(name)

    def before_event_writer(self) -> None:
        """Write the run's buffered events, so a step that records its own keeps their order."""
        record_events(self.tx, self.events)
        self.events.clear()

    def money(self, field_name: str, delta: int) -> int:
        """A ledger entry keyed by the run and step; its event is buffered until the finish."""
        reason = f"{self.actionset.title} ({self.actionset.name})"
        # Step amounts are whole credits; a field with decimals counts in smaller units.
        delta *= self.tx.policy(field_name).scale
        _, balance = apply_delta(
            self.tx,
            self.contact_id,
            field_name,
            delta,
            f"run:{self.key}#{self.index}",
            reason=reason,
            actor=self.actor,
            run_id=self.run_id,
            events=self.events,
            grant=ACTIONSET_GRANT,
        )
        self.balances[field_name] = self.known[field_name] = balance
        if delta < 0:
            self.debited[field_name] = self.debited.get(field_name, 0) - delta
        return balance

    def queue(self, kind: Literal["email", "webhook"], payload: Mapping[str, Any]) -> None:
        """Buffer an outbox row, written when the run finishes (same transaction)."""
        origin = {
            "action": self.actionset.name,
            "title": self.actionset.title,
            "params": self.params,
        }
        full = steps.outbox_payload(
            payload, self.contact_id, self.email, self.all_balances(), origin
        )
        dedupe_key = f"run:{self.run_id}#{self.index}"
        self.outbox.append(
            outbox_row(self.tx, kind, dedupe_key, full, self.contact_id, self.run_id)
        )

    def all_balances(self) -> dict[str, int]:
        """The contact's balance in every credit field now. Only a step of this run can move
        one while it holds the contact's lock, and :meth:`money` keeps what each move left, so
        the fields the run has not seen are read once, and a purchase with one field reads
        none (one round trip fewer on the purchase path)."""
        unseen = sorted(self.tx.credit_fields - self.known.keys())
        if unseen:
            self.known.update(ledger.balances(self.tx.conn, self.contact_id, unseen))
        return {name: self.known[name] for name in sorted(self.tx.credit_fields)}

    def redirect_to(self, url: str) -> None:
        """Where the visitor goes after the run."""
        self.redirect = url

    def defer_next(self, delay: Duration) -> None:
        """Buttons cannot wait (the registry allows ``wait`` only in rules)."""
        raise StoreError("a button cannot wait")

    def schedule(self, step: Step, delay: Duration) -> datetime:
        """Buttons cannot schedule (the registry allows it only in rules)."""
        raise StoreError("a button cannot schedule steps")

    def award(
        self, points: int, to: str, reason: str, wait: Duration | Literal["now"] | None
    ) -> str:
        """Buttons cannot award points (the registry allows it only in rules)."""
        raise StoreError("a button cannot award points")

    def remove_points(self, points: int, reason: str) -> str:
        """Buttons cannot remove points (the registry allows it only in rules)."""
        raise StoreError("a button cannot remove points")


def run_actionset(
    tx: Tx,
    actionset: Actionset,
    contact: int | str,
    params: Mapping[str, Any],
    key: str,
    actor: Actor,
    tag_lookup: Callable[[str], Tag],
    step_hook: StepHook | None = None,
) -> RunResult:
    """Run ``actionset`` for ``contact`` once per ``key`` inside ``tx`` (see module docstring)."""
    try:
        bound = actionset.bind(params)
    except ActionsetParamError as exc:
        raise InvalidInput(str(exc)) from exc
    check_key(key)
    ref = contacts.parse_ref(contact)
    # An email is resolved (and locked) first: the fingerprint names the contact by id.
    contact_id = ref if isinstance(ref, int) else contacts.lock_contact(tx, ref)
    fp = fingerprint(
        "actionset", {"action": actionset.name, "contact": contact_id, "params": bound}
    )
    run = _Run(tx, actionset, contact_id, bound, key, actor, tag_lookup)
    run_id = _claim_run(run, fp, contact)
    if run_id is None:  # the key is taken: answer with that run (or refuse other parameters)
        return _replay(tx, key, fp)
    run.run_id = run_id
    # Checked after the claim, inside the same transaction: a refusal rolls the claim back.
    _check_allowed(run, tag_lookup)
    owned = _owned(run, tag_lookup)
    if not owned:
        for index, step in enumerate(actionset.steps):
            if step_hook is not None:
                step_hook(index, step)
            run.index = index
            steps.perform(run, step, {name: run.arg(v) for name, v in step.args.items()})
        if step_hook is not None:
            step_hook(len(actionset.steps), None)
    return _finish(run, "owned" if owned else "done")


def _replay(tx: Tx, key: str, fp: str) -> RunResult:
    row = tx.conn.execute(_FIND_RUN, {"key": key}).one()
    if row.fingerprint != fp:
        raise IdempotencyConflict(f"this button (key {key!r}) was already used for another action")
    return RunResult(
        row.action,
        row.outcome,
        row.message,
        row.id,
        dict(row.result.get("balances", {})),
        row.result.get("redirect"),
        replayed=True,
    )


def _owned(run: _Run, tag_lookup: Callable[[str], Tag]) -> bool:
    owns = run.actionset.owns
    if owns is None:
        return False
    tag = tag_lookup(str(run.arg(owns)))
    return contacts.holds_tag(run.tx.conn, run.contact_id, tag.id, run.tx.now)


def _check_allowed(run: _Run, tag_lookup: Callable[[str], Tag]) -> None:
    """Refuse (before anything is written) unless every ``requires`` tag is held and no
    ``blocked_by`` tag is."""
    definition = run.actionset

    def holds(ref: str | Ref) -> bool:
        tag = tag_lookup(str(run.arg(ref)))
        return contacts.holds_tag(run.tx.conn, run.contact_id, tag.id, run.tx.now)

    if all(holds(t) for t in definition.requires) and not any(
        holds(t) for t in definition.blocked_by
    ):
        return
    values = {"title": definition.title, **run.params}
    raise RunRefused(render_message(definition.refused or REFUSED_MESSAGE, values))


def _claim_run(run: _Run, fp: str, ref: Any) -> int | None:
    """Lock the contact, read its email and insert the run's row; the run's id, or None when its
    key exists. ``ref`` is the contact as the caller named it, for the error message."""
    values = {
        "idempotency_key": run.key,
        "action": run.actionset.name,
        "contact_id": run.contact_id,
        "params": run.params,
        "fingerprint": fp,
        "outcome": "pending",
        "message": "",
        "result": {},
        "actor_kind": run.actor.kind,
        "actor_id": run.actor.id,
        "created_at": run.tx.now,
    }
    conn = run.tx.conn
    if run.tx.is_postgres:
        params = {f"r_{name}": value for name, value in values.items()}
        row = _LOCK_AND_CLAIM.first(conn, params | {"b_contact": run.contact_id})
        if row is None:
            raise UnknownContact(f"no contact {ref!r}")
        _, run.email, run_id = row
    else:
        _, run.email = contacts.lock_contact_row(run.tx, run.contact_id)
        run_id = _CLAIM_RUN.scalar(conn, values)
    return None if run_id is None else int(run_id)


def _finish(run: _Run, outcome: Outcome) -> RunResult:
    message = _message(run, outcome)
    result = RunResult(
        run.actionset.name, outcome, message, run.run_id, dict(run.balances), run.redirect
    )
    data = {"action": run.actionset.name, "run_id": run.run_id, "outcome": outcome}
    run.events.append(event_row(run.tx, "actionset_run", run.contact_id, data, run.run_id))
    finish: dict[str, Any] = {"b_id": run.run_id, "b_outcome": outcome, "b_message": message}
    finish["b_result"] = result.to_json()
    if run.tx.is_postgres:
        _FINISH_ALL.execute(run.tx.conn, finish | _as_documents(run))
    else:
        _FINISH_RUN.execute(run.tx.conn, finish)
        enqueue_many(run.tx, run.outbox)
        run.before_event_writer()
    return result


def _as_documents(run: _Run) -> dict[str, Any]:
    """The run's queued messages and events as the JSON arrays :data:`_FINISH_ALL` reads. Every
    row of a transaction carries its time, ``tx.now``, which travels once as ``b_now``."""

    def document(row: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k not in ("created_at", "next_attempt_at")}

    return {
        "b_now": run.tx.now,
        "b_outbox": [document(row) for row in run.outbox],
        "b_events": [document(row) for row in run.events],
    }


def _message(run: _Run, outcome: Outcome) -> str:
    values: dict[str, Any] = {"title": run.actionset.title, **run.params}
    if outcome == "owned":
        return render_message(OWNED_MESSAGE, values)
    field_name = next(iter(run.debited), None) or next(iter(run.balances), None)
    if field_name is not None:
        policy = run.tx.policy(field_name)
        values.update(field=field_name, balance=policy.show(run.balances[field_name]))
        values["cost"] = values.get("cost", policy.show(run.debited.get(field_name, 0)))
    template = run.actionset.message or (
        DEFAULT_MESSAGE if run.debited else DEFAULT_MESSAGE_NO_DEBIT
    )
    return render_message(template, values)


def render_message(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``{name}`` placeholders; unknown names stay as written (no attribute access)."""
    return re.sub(
        r"\{(\w+)\}",
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0),
        template,
    )
