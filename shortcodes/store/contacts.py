"""Store contacts and tags: who the contacts are, which tags they hold, their custom fields.

Functions of an open :class:`~shortcodes.store.session.Tx` (writes) or a connection (reads). Tag
and field names are matched case-insensitively. A grant is a tag with an expiry; once expired it
is no longer held, whatever row remains. Every change records its event (see ``events``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from shortcodes.context import Contact, Tag
from shortcodes.errors import (
    DuplicateContact,
    InvalidInput,
    UnknownContact,
    UnknownField,
    UnknownTag,
)
from shortcodes.membership import vocabulary as vocab
from shortcodes.membership.credit_policy import CreditPolicy
from shortcodes.store import schema
from shortcodes.store.events import record_event
from shortcodes.store.fastpath import Prepared
from shortcodes.store.session import Tx

FieldValue = str | int | float | bool | None
ContactRef = int | str


def normalize_email(email: str) -> str:
    """The stored form of an email (see :func:`.vocabulary.email`); InvalidInput otherwise."""
    try:
        return vocab.email(email)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def check_tag_name(name: str) -> str:
    """A tag name, trimmed (see :func:`.vocabulary.tag_name`); InvalidInput otherwise."""
    try:
        return vocab.tag_name(name)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def check_field_value(name: str, value: Any) -> FieldValue:
    """A custom field value must be a JSON scalar."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise InvalidInput(
        f"field {name!r} needs a text, number or boolean value, got {type(value).__name__}"
    )


def check_field_name(name: str, credit_fields: Iterable[str]) -> str:
    """A settable custom field (see :func:`.vocabulary.custom_field`); UnknownField otherwise."""
    try:
        return vocab.custom_field(name, tuple(credit_fields))
    except ValueError as exc:
        raise UnknownField(str(exc)) from None


def add_contact(
    tx: Tx, email: str, name: str, password_hash: str | None, fields: Mapping[str, Any]
) -> int:
    """Create a contact; refuses a duplicate email. Returns the new id."""
    email = normalize_email(email)
    clean = {
        check_field_name(k, tx.credit_fields): check_field_value(k, v) for k, v in fields.items()
    }
    t = schema.contacts
    if tx.conn.execute(select(t.c.id).where(t.c.email == email)).first() is not None:
        raise DuplicateContact(f"a contact with email {email} already exists")
    new_id = tx.conn.execute(
        insert(t)
        .values(
            email=email,
            name=name.strip(),
            password_hash=password_hash,
            fields=clean,
            created_at=tx.now,
        )
        .returning(t.c.id)
    ).scalar_one()
    record_event(tx, "contact_created", new_id, {"email": email})
    return int(new_id)


def resolve_contact(conn: Connection, ref: ContactRef) -> int:
    """A contact id from an id or an email; :class:`UnknownContact` if there is none."""
    return _find_contact(conn, ref, lock=False)[0]


def lock_contact(tx: Tx, ref: ContactRef) -> int:
    """Resolve and lock a contact for the rest of the transaction; returns its id.

    On PostgreSQL the row lock serializes every write to one contact, which makes check-then-act
    sequences (already owned? key used?) safe. SQLite's ``BEGIN IMMEDIATE`` already did that.
    """
    return _find_contact(tx.conn, ref, lock=tx.is_postgres)[0]


def lock_contacts(tx: Tx, ids: Iterable[int]) -> None:
    """:func:`lock_contact` for many contacts by id, in id order (so two batches never wait on
    each other in a cycle), with one statement; :class:`UnknownContact` if one does not exist."""
    wanted = sorted(set(ids))
    c = schema.contacts
    found: set[int] = set()
    for start in range(0, len(wanted), 5000):
        query = select(c.c.id).where(c.c.id.in_(wanted[start : start + 5000])).order_by(c.c.id)
        if tx.is_postgres:
            query = query.with_for_update()
        found.update(int(i) for i in tx.conn.execute(query).scalars())
    missing = sorted(set(wanted) - found)
    if missing:
        raise UnknownContact(f"no contact {missing[0]!r}")


def lock_contact_row(tx: Tx, ref: ContactRef) -> tuple[int, str]:
    """:func:`lock_contact` that also returns the email, in the same statement."""
    return _find_contact(tx.conn, ref, lock=tx.is_postgres)


_c = schema.contacts
_BY_ID = select(_c.c.id, _c.c.email).where(_c.c.id == bindparam("ref"))
_BY_EMAIL = select(_c.c.id, _c.c.email).where(_c.c.email == bindparam("ref"))
_LOOKUPS = {
    (False, False): Prepared(_BY_EMAIL),
    (False, True): Prepared(_BY_EMAIL.with_for_update()),
    (True, False): Prepared(_BY_ID),
    (True, True): Prepared(_BY_ID.with_for_update()),
}


#: The largest contact id (``contacts.id`` is a 32-bit integer on PostgreSQL).
MAX_ID = 2**31 - 1


def parse_ref(ref: ContactRef) -> int | str:
    """A contact reference as the lookups take it: an id (``int``) or a normalized email."""
    if isinstance(ref, bool) or not isinstance(ref, int | str):
        raise InvalidInput(f"a contact is named by id or email, got {ref!r}")
    if isinstance(ref, int) or ref.strip().isdigit():
        number = int(ref) if isinstance(ref, int) or len(ref.strip()) <= 19 else 0
        if not 0 < number <= MAX_ID:
            # Ids are 32-bit on PostgreSQL: a bigger one names no contact (and would be a
            # database error, not an answer, if it reached the query).
            raise UnknownContact(f"no contact {str(ref)[:40]!r}")
        return number
    return vocab.canonical_email(ref)


def _find_contact(conn: Connection, ref: ContactRef, *, lock: bool) -> tuple[int, str]:
    key = parse_ref(ref)
    row = _LOOKUPS[isinstance(key, int), lock].first(conn, {"ref": key})
    if row is None:
        raise UnknownContact(f"no contact {ref!r}")
    return int(row[0]), str(row[1])


def resolve_tag(conn: Connection, ref: int | str | Tag) -> Tag:
    """The tag named by id, by name (case-insensitively) or by a :class:`Tag`; else UnknownTag."""
    t = schema.tags
    if isinstance(ref, Tag):
        ref = ref.id
    if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
        query = select(t.c.id, t.c.name).where(t.c.id == int(ref))
    elif isinstance(ref, str):
        query = select(t.c.id, t.c.name).where(t.c.name_key == ref.strip().casefold())
    else:
        raise InvalidInput(f"a tag is named by id or name, got {ref!r}")
    row = conn.execute(query).first()
    if row is None:
        raise UnknownTag(f"no tag {ref!r}")
    return Tag(row.id, row.name)


def create_tag(tx: Tx, name: str, category: str = "") -> Tag:
    """Create a tag, or return the existing one with that name (case-insensitively)."""
    name = check_tag_name(name)
    t = schema.tags
    existing = tx.conn.execute(
        select(t.c.id, t.c.name).where(t.c.name_key == name.casefold())
    ).first()
    if existing is not None:
        return Tag(existing.id, existing.name)
    new_id = tx.conn.execute(
        insert(t)
        .values(name=name, name_key=name.casefold(), category=category, created_at=tx.now)
        .returning(t.c.id)
    ).scalar_one()
    return Tag(int(new_id), name)


def apply_tag(
    tx: Tx, contact_id: int, tag: Tag, source: str = "", expires_at: datetime | None = None
) -> bool:
    """Give the contact the tag (until ``expires_at`` when set); True if it was not held before.

    A permanent tag stays permanent when granted again; a grant is extended, never shortened.
    """
    t = schema.contact_tags
    where = (t.c.contact_id == contact_id) & (t.c.tag_id == tag.id)
    row = tx.conn.execute(select(t.c.expires_at).where(where)).first()
    if row is None:
        tx.conn.execute(
            insert(t).values(
                contact_id=contact_id,
                tag_id=tag.id,
                applied_at=tx.now,
                expires_at=expires_at,
                source=source,
            )
        )
    elif row.expires_at is not None and row.expires_at <= tx.now:
        tx.conn.execute(
            update(t).where(where).values(applied_at=tx.now, expires_at=expires_at, source=source)
        )
    else:
        _extend(tx, where, row.expires_at, expires_at)
        return False
    data = {"tag_id": tag.id, "tag": tag.name, "source": source, "expires_at": _iso(expires_at)}
    record_event(tx, "tag_applied", contact_id, data)
    return True


def _extend(tx: Tx, where: Any, held_until: datetime | None, wanted: datetime | None) -> None:
    if held_until is None:
        return
    if wanted is None or wanted > held_until:
        tx.conn.execute(update(schema.contact_tags).where(where).values(expires_at=wanted))


def remove_tag(tx: Tx, contact_id: int, tag: Tag, source: str = "") -> bool:
    """Take the tag away; True if the contact held it (an expired grant is not held)."""
    t = schema.contact_tags
    where = (t.c.contact_id == contact_id) & (t.c.tag_id == tag.id)
    row = tx.conn.execute(select(t.c.expires_at).where(where)).first()
    if row is None:
        return False
    tx.conn.execute(delete(t).where(where))
    if row.expires_at is not None and row.expires_at <= tx.now:
        return False
    record_event(
        tx, "tag_removed", contact_id, {"tag_id": tag.id, "tag": tag.name, "source": source}
    )
    return True


def holds_tag(conn: Connection, contact_id: int, tag_id: int, now: datetime) -> bool:
    """True if the contact holds the tag at ``now`` (permanently or by an unexpired grant)."""
    t = schema.contact_tags
    query = select(t.c.tag_id).where(
        (t.c.contact_id == contact_id) & (t.c.tag_id == tag_id) & _unexpired(now)
    )
    return conn.execute(query).first() is not None


def set_field(tx: Tx, contact_id: int, name: str, value: Any) -> None:
    """Set a custom field, replacing any existing spelling of the same name (case-insensitively)."""
    name = check_field_name(name, tx.credit_fields)
    value = check_field_value(name, value)
    t = schema.contacts
    current = tx.conn.execute(select(t.c.fields).where(t.c.id == contact_id)).scalar_one()
    fields = {k: v for k, v in current.items() if k.casefold() != name.casefold()}
    fields[name] = value
    tx.conn.execute(update(t).where(t.c.id == contact_id).values(fields=fields))
    record_event(tx, "field_set", contact_id, {"field": name, "value": value})


def snapshot(
    conn: Connection,
    contact_id: int,
    now: datetime,
    credit_fields: Iterable[str],
    policies: Mapping[str, CreditPolicy] | None = None,
) -> Contact:
    """The read-only :class:`Contact` pages render against: held tags, fields and balances.

    Fields are ``Email`` and ``Name`` from the contact row, then the custom fields, then every
    declared credit field (0 when the contact never had an entry) and any other balance it holds;
    a balance of a field with decimals is an exact Decimal (``2.50``), never a float.
    """
    c = schema.contacts
    row = conn.execute(select(c.c.email, c.c.name, c.c.fields).where(c.c.id == contact_id)).first()
    if row is None:
        raise UnknownContact(f"no contact {contact_id!r}")
    fields: dict[str, Any] = {"Email": row.email, "Name": row.name, **row.fields}
    fields.update(dict.fromkeys(credit_fields, 0))
    a = schema.credit_accounts
    for field, balance in conn.execute(
        select(a.c.field, a.c.balance).where(a.c.contact_id == contact_id)
    ):
        policy = (policies or {}).get(field)
        fields[field] = int(balance) if policy is None else policy.show(int(balance))
    return Contact(
        id=contact_id, email=row.email, tags=held_tags(conn, contact_id, now), fields=fields
    )


def held_tags(conn: Connection, contact_id: int, now: datetime) -> list[Tag]:
    """The tags the contact holds at ``now``, by id."""
    ct, t = schema.contact_tags, schema.tags
    query = (
        select(t.c.id, t.c.name)
        .join(ct, ct.c.tag_id == t.c.id)
        .where((ct.c.contact_id == contact_id) & _unexpired(now))
        .order_by(t.c.id)
    )
    return [Tag(r.id, r.name) for r in conn.execute(query)]


def _unexpired(now: datetime) -> Any:
    ct = schema.contact_tags
    return or_(ct.c.expires_at.is_(None), ct.c.expires_at > now)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat() + "Z"
