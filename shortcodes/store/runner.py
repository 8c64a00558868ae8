"""Store actionset runner: one button click, one transaction, exactly once per nonce.

:func:`run_actionset` binds the button's parameters, locks the contact, answers a replayed key
with the first run's result, skips a purchase the contact already owns, then performs every step
inside the caller's transaction. Any error (an overdraft, an unknown tag, a crash) propagates and
the caller's transaction rolls back every step; nothing of a failed run is ever visible.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import insert, select, update

from shortcodes.actionsets import Actionset, ActionsetParamError, Ref, Step
from shortcodes.context import Tag
from shortcodes.store import contacts, schema
from shortcodes.store.errors import IdempotencyConflict, InvalidInput
from shortcodes.store.events import enqueue, record_event
from shortcodes.store.idempotency import check_key, fingerprint
from shortcodes.store.ledger import apply_delta, check_amount
from shortcodes.store.session import Actor, Tx

Outcome = Literal["done", "owned", "insufficient"]

#: Called before each step with its index and once more after the last one with ``None``: an
#: observer point for tracing, and where the fault-injection tests raise or get killed.
StepHook = Callable[[int, Step | None], None]

DEFAULT_MESSAGE = "Unlocked {title} — {balance} credits left"
DEFAULT_MESSAGE_NO_DEBIT = "Done: {title}"
OWNED_MESSAGE = "You already own {title}"


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
        return self.outcome != "insufficient"

    def to_json(self) -> dict[str, Any]:
        """The form stored with the run, which replays answer with."""
        return {"balances": dict(self.balances), "redirect": self.redirect}


@dataclass
class _Run:
    """The mutable state of one run while its steps execute."""

    tx: Tx
    actionset: Actionset
    contact_id: int
    email: str
    params: dict[str, int | str]
    key: str
    actor: Actor
    run_id: int = 0
    balances: dict[str, int] = field(default_factory=dict)
    debited: dict[str, int] = field(default_factory=dict)
    redirect: str | None = None

    def arg(self, value: Any) -> Any:
        """A step argument with ``$param`` references replaced by the bound values."""
        return self.params[value.name] if isinstance(value, Ref) else value


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
    contact_id = contacts.lock_contact(tx, contact)
    fp = fingerprint(
        "actionset", {"action": actionset.name, "contact": contact_id, "params": bound}
    )
    replay = _find_run(tx, key, fp)
    if replay is not None:
        return replay
    email = tx.conn.execute(
        select(schema.contacts.c.email).where(schema.contacts.c.id == contact_id)
    ).scalar_one()
    run = _Run(tx, actionset, contact_id, email, bound, key, actor)
    owned = _owned(run, tag_lookup)
    run.run_id = _insert_run(run, fp, "owned" if owned else "pending")
    if not owned:
        for index, step in enumerate(actionset.steps):
            if step_hook is not None:
                step_hook(index, step)
            _perform(run, index, step, tag_lookup)
        if step_hook is not None:
            step_hook(len(actionset.steps), None)
    return _finish(run, "owned" if owned else "done")


def _find_run(tx: Tx, key: str, fp: str) -> RunResult | None:
    t = schema.actionset_runs
    row = tx.conn.execute(select(t).where(t.c.idempotency_key == key)).first()
    if row is None:
        return None
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


def _insert_run(run: _Run, fp: str, outcome: str) -> int:
    t = schema.actionset_runs
    stmt = insert(t).values(
        idempotency_key=run.key,
        action=run.actionset.name,
        contact_id=run.contact_id,
        params=run.params,
        fingerprint=fp,
        outcome=outcome,
        message="",
        result={},
        actor_kind=run.actor.kind,
        actor_id=run.actor.id,
        created_at=run.tx.now,
    )
    return int(run.tx.conn.execute(stmt.returning(t.c.id)).scalar_one())


def _perform(run: _Run, index: int, step: Step, tag_lookup: Callable[[str], Tag]) -> None:
    args = {name: run.arg(value) for name, value in step.args.items()}
    if step.kind in ("debit", "credit"):
        _money(run, index, step.kind, args["field"], check_amount(args["amount"], allow_zero=True))
    elif step.kind in ("apply_tag", "grant"):
        expires = run.tx.now + args["for"] if step.kind == "grant" else None
        contacts.apply_tag(run.tx, run.contact_id, tag_lookup(args["tag"]), _source(run), expires)
    elif step.kind == "remove_tag":
        contacts.remove_tag(run.tx, run.contact_id, tag_lookup(args["tag"]), _source(run))
    elif step.kind == "set_field":
        contacts.set_field(run.tx, run.contact_id, args["field"], args["value"])
    elif step.kind in ("send_email", "webhook"):
        _outbox(run, index, step.kind, args)
    elif step.kind == "redirect":
        run.redirect = args["url"]
    else:  # pragma: no cover - actionsets.py validates step kinds on load
        raise InvalidInput(f"unknown step {step.kind!r}")


def _money(run: _Run, index: int, kind: str, field_name: str, amount: int) -> None:
    if amount == 0:
        return  # a free item: no entry, since entries record changes and zero is none
    delta = -amount if kind == "debit" else amount
    reason = f"{run.actionset.title} ({run.actionset.name})"
    _, balance = apply_delta(
        run.tx,
        run.contact_id,
        field_name,
        delta,
        f"run:{run.key}#{index}",
        reason=reason,
        actor=run.actor,
        run_id=run.run_id,
    )
    run.balances[field_name] = balance
    if kind == "debit":
        run.debited[field_name] = run.debited.get(field_name, 0) + amount


def _outbox(run: _Run, index: int, kind: str, args: Mapping[str, Any]) -> None:
    common = {
        "action": run.actionset.name,
        "title": run.actionset.title,
        "contact_id": run.contact_id,
        "email": run.email,
        "params": run.params,
        "balances": dict(run.balances),
    }
    if kind == "send_email":
        payload = {"template": args["template"], "subject": args.get("subject", ""), **common}
        enqueue(run.tx, "email", f"run:{run.run_id}#{index}", payload, run.contact_id, run.run_id)
    else:
        event = args.get("event", f"actionset.{run.actionset.name}")
        payload = {"url": args["url"], "event": event, **common}
        enqueue(run.tx, "webhook", f"run:{run.run_id}#{index}", payload, run.contact_id, run.run_id)


def _source(run: _Run) -> str:
    return f"actionset:{run.actionset.name}"


def _finish(run: _Run, outcome: Outcome) -> RunResult:
    message = _message(run, outcome)
    result = RunResult(
        run.actionset.name, outcome, message, run.run_id, dict(run.balances), run.redirect
    )
    t = schema.actionset_runs
    run.tx.conn.execute(
        update(t)
        .where(t.c.id == run.run_id)
        .values(outcome=outcome, message=message, result=result.to_json())
    )
    data = {"action": run.actionset.name, "run_id": run.run_id, "outcome": outcome}
    record_event(run.tx, "actionset_run", run.contact_id, data, run_id=run.run_id)
    return result


def _message(run: _Run, outcome: Outcome) -> str:
    values: dict[str, Any] = {"title": run.actionset.title, **run.params}
    if outcome == "owned":
        return render_message(OWNED_MESSAGE, values)
    field_name = next(iter(run.debited), None) or next(iter(run.balances), None)
    if field_name is not None:
        values.update(field=field_name, balance=run.balances[field_name])
        values["cost"] = values.get("cost", run.debited.get(field_name, 0))
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
