"""Store idempotency: the same key with the same parameters answers with the first result.

Keys are claimed inside the operation's own transaction, after the contact's row lock is held,
so two submissions of one key run one after the other and the second finds the first's record.
The same key with other parameters is refused: a key names one operation, never two.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select, update

from shortcodes.errors import IdempotencyConflict, InvalidInput
from shortcodes.store import schema
from shortcodes.store.fastpath import insert_rows
from shortcodes.store.session import Actor, Tx

MAX_KEY_LENGTH = 200


def check_key(key: str) -> str:
    """Validate an idempotency key: non-empty, printable, at most 200 characters."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput("an idempotency key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"an idempotency key must be printable and at most {MAX_KEY_LENGTH} long"
        )
    return key


def fingerprint(kind: str, params: Mapping[str, Any]) -> str:
    """A stable hash of what an operation was asked to do (kind plus canonical JSON parameters)."""
    blob = json.dumps({"kind": kind, "params": params}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def once(
    tx: Tx,
    key: str,
    kind: str,
    contact_id: int | None,
    params: Mapping[str, Any],
    actor: Actor,
    perform: Callable[[int], Mapping[str, Any]],
) -> tuple[dict[str, Any], bool]:
    """Run ``perform(operation_id)`` once per ``key`` in ``tx``: (its result, False); a replay
    with the same ``params`` gets (the first result, True) and performs nothing; other params
    under the same key are an :class:`IdempotencyConflict`. The claim and the effects commit
    or roll back together, since they share the caller's transaction."""
    fp = fingerprint(kind, params)
    found = find_operation(tx, check_key(key), fp)
    if found is not None:
        return found, True
    op_id = claim_operation(tx, key, kind, contact_id, fp, actor)
    result = dict(perform(op_id))
    finish_operation(tx, op_id, result)
    return result, False


def find_operation(tx: Tx, key: str, fp: str) -> dict[str, Any] | None:
    """The stored result for ``key``, None if unused; refuses a key used with other parameters."""
    t = schema.operations
    row = tx.conn.execute(select(t.c.fingerprint, t.c.result).where(t.c.key == key)).first()
    if row is None:
        return None
    if row.fingerprint != fp:
        raise IdempotencyConflict(
            f"idempotency key {key!r} was already used for a different operation"
        )
    result: dict[str, Any] = row.result
    return result


def claim_operation(
    tx: Tx, key: str, kind: str, contact_id: int | None, fp: str, actor: Actor
) -> int:
    """Record ``key`` as used by this operation (result filled in by :func:`finish_operation`)."""
    t = schema.operations
    return int(
        tx.conn.execute(
            insert(t)
            .values(
                key=key,
                kind=kind,
                contact_id=contact_id,
                fingerprint=fp,
                result={},
                actor_kind=actor.kind,
                actor_id=actor.id,
                created_at=tx.now,
            )
            .returning(t.c.id)
        ).scalar_one()
    )


def finish_operation(tx: Tx, op_id: int, result: Mapping[str, Any]) -> None:
    """Store the result that replays of this operation's key will answer with."""
    t = schema.operations
    tx.conn.execute(update(t).where(t.c.id == op_id).values(result=dict(result)))


def claim_many(
    tx: Tx, kind: str, actor: Actor, claims: Sequence[tuple[str, int | None, Mapping[str, Any]]]
) -> list[bool]:
    """:func:`once` for many keys whose operations record nothing but their claim.

    ``claims`` are (key, contact id, params); the answer says for each whether it was claimed
    now (True) or had been before with the same params (False, a replay). A key used with other
    params is an :class:`IdempotencyConflict` and nothing is claimed. One read and one insert
    for the lot; a parallel claim of the same key fails the insert, and the caller's retry
    finds it.
    """
    prints = {key: fingerprint(kind, params) for key, _contact, params in claims}
    t = schema.operations
    found: dict[str, str] = {}
    keys = [check_key(key) for key, _contact, _params in claims]
    for start in range(0, len(keys), 5000):
        query = select(t.c.key, t.c.fingerprint).where(t.c.key.in_(keys[start : start + 5000]))
        found.update((str(k), str(fp)) for k, fp in tx.conn.execute(query))
    for key, fp in found.items():
        if prints[key] != fp:
            raise IdempotencyConflict(
                f"idempotency key {key!r} was already used for a different operation"
            )
    fresh: list[dict[str, Any]] = [
        {
            "key": key,
            "kind": kind,
            "contact_id": contact_id,
            "fingerprint": prints[key],
            "result": {},
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "created_at": tx.now,
        }
        for key, contact_id, _params in claims
        if key not in found
    ]
    insert_rows(tx.conn, t, fresh)
    return [key not in found for key, _contact, _params in claims]
