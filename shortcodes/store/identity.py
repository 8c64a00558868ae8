"""Store identity: server-side sessions, pending sign-ups, the account-mail rate limit, password
and email changes, and the admin audit trail.

**Sessions.** A login creates a row in ``sessions`` keyed by the SHA-256 of a random token; the
browser's (signed) session cookie holds the token. Every request reads that row by primary key
(one indexed read), so deleting it ends the session for every copy of the cookie: logout deletes
one row, a password change or "log out everywhere" deletes all of a contact's rows.

**Sign-ups** wait in ``signups`` until their emailed link is followed; only then is the contact
created (so an address nobody verified never becomes an account).

**Mail limit.** The sign-up and reset forms send email to whatever address is typed in; each
send is recorded in ``mail_requests`` and refused past :class:`MailPolicy`'s limits per address
(the typed email) and per visitor address (IP), so the forms cannot flood an inbox.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import generate_password_hash

from shortcodes.errors import InvalidInput
from shortcodes.membership import vocabulary as vocab
from shortcodes.store import contacts, schema
from shortcodes.store.session import Actor, Tx, run_read, to_db_time
from shortcodes.store.throttle import address_key, email_key

if TYPE_CHECKING:
    from shortcodes.store.facade import Store

SESSION_LIFETIME = timedelta(days=14)
#: Sign-ups older than this are dropped (their links expired long ago).
SIGNUP_LIFETIME = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class MailPolicy:
    """How many account emails (sign-up, reset, email change) the forms send per ``window``:
    to one email address, and on behalf of one visitor address."""

    per_email: int = 3
    per_address: int = 10
    window: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Signup:
    """A sign-up waiting for its verification link."""

    id: int
    email: str
    name: str
    password_hash: str


def token_id(token: str) -> str:
    """The key a session token is stored under (its SHA-256): the table holds no live token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Accounts:
    """The account operations of one store (each its own transaction)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _now(self) -> datetime:
        return to_db_time(self.store.clock())

    # -- sessions --------------------------------------------------------------------------------

    def start_session(self, contact_id: int, lifetime: timedelta = SESSION_LIFETIME) -> str:
        """A new session for the contact; the token its cookie carries."""
        token = secrets.token_urlsafe(32)
        s = schema.sessions

        def work(tx: Tx) -> None:
            # Expired rows are dead weight: drop them while we are here (indexed).
            tx.conn.execute(delete(s).where(s.c.expires_at <= tx.now))
            row = {"id": token_id(token), "contact_id": contact_id, "created_at": tx.now}
            tx.conn.execute(insert(s).values(**row, expires_at=tx.now + lifetime))

        self.store.run_in_transaction(work)
        return token

    def session_contact(self, token: str) -> int | None:
        """The contact of a live session, or None (unknown, ended or expired)."""
        s = schema.sessions
        query = select(s.c.contact_id).where(
            s.c.id == token_id(token), s.c.expires_at > self._now()
        )
        found = run_read(self.store.engine, lambda conn: conn.execute(query).scalar())
        return None if found is None else int(found)

    def end_session(self, token: str) -> None:
        """End one session (logout)."""
        s = schema.sessions
        self.store.run_in_transaction(
            lambda tx: tx.conn.execute(delete(s).where(s.c.id == token_id(token)))
        )

    def end_all_sessions(self, contact_id: int, actor: Actor | None = None) -> int:
        """End every session of the contact; how many. ``actor`` (an admin) is audited."""

        def work(tx: Tx) -> int:
            ended = _end_all(tx, contact_id)
            if actor is not None:
                audit(tx, actor, "sessions.end_all", contact_id, {"sessions": ended})
            return ended

        return self.store.run_in_transaction(work)

    def session_count(self, contact_id: int) -> int:
        """How many live sessions the contact has."""
        s = schema.sessions
        query = select(func.count()).where(
            s.c.contact_id == contact_id, s.c.expires_at > self._now()
        )
        return int(run_read(self.store.engine, lambda conn: conn.execute(query).scalar_one()))

    # -- password, name and email ----------------------------------------------------------------

    def password_hash(self, contact_id: int) -> str:
        """The contact's password hash ("" when it has none)."""
        t = schema.contacts
        query = select(t.c.password_hash).where(t.c.id == contact_id)
        found = run_read(self.store.engine, lambda conn: conn.execute(query).scalar())
        return str(found or "")

    def set_password(
        self, contact_id: int, password: str, expected_hash: str | None = None
    ) -> bool:
        """Set a new password and end every session of the contact, in one transaction.

        With ``expected_hash`` (a reset link) the change happens only while the hash is still
        that one, so a reset link works once; False when it no longer is.
        """
        hashed = generate_password_hash(password)
        t = schema.contacts

        def work(tx: Tx) -> bool:
            where = t.c.id == contact_id
            if expected_hash is not None:
                where = where & (func.coalesce(t.c.password_hash, "") == expected_hash)
            if tx.conn.execute(update(t).where(where).values(password_hash=hashed)).rowcount != 1:
                return False
            _end_all(tx, contact_id)
            return True

        return self.store.run_in_transaction(work)

    def set_name(self, contact_id: int, name: str) -> None:
        """Change the contact's name."""
        t = schema.contacts
        clean = check_name(name)
        self.store.run_in_transaction(
            lambda tx: tx.conn.execute(update(t).where(t.c.id == contact_id).values(name=clean))
        )

    def change_email(self, contact_id: int, old: str, new: str) -> bool:
        """Move the contact from ``old`` to ``new`` (a confirmed link); False when the contact's
        email is no longer ``old`` (the link was used) or ``new`` belongs to someone else."""
        t = schema.contacts
        new_key = vocab.canonical_email(new)

        def work(tx: Tx) -> bool:
            where = (t.c.id == contact_id) & (t.c.email == vocab.canonical_email(old))
            return bool(tx.conn.execute(update(t).where(where).values(email=new_key)).rowcount)

        try:
            return self.store.run_in_transaction(work)
        except IntegrityError:  # the new address was taken meanwhile
            return False

    # -- sign-ups --------------------------------------------------------------------------------

    def add_signup(self, email: str, name: str, password: str) -> int:
        """Record a sign-up waiting for verification; its id (the link binds it)."""
        hashed = generate_password_hash(password)
        g = schema.signups
        row = {"email": vocab.canonical_email(email), "name": check_name(name)}

        def work(tx: Tx) -> int:
            tx.conn.execute(delete(g).where(g.c.created_at < tx.now - SIGNUP_LIFETIME))
            values = {**row, "password_hash": hashed, "created_at": tx.now}
            return int(tx.conn.execute(insert(g).values(values).returning(g.c.id)).scalar_one())

        return self.store.run_in_transaction(work)

    def complete_signup(self, signup_id: int, email: str) -> int | None:
        """Create the contact of a verified sign-up (password as chosen), or give the password to
        the existing contact of that email when it has none; its id. None when the sign-up is
        gone (already verified, or expired) or the email has a password-holding account."""
        g = schema.signups

        def work(tx: Tx) -> int | None:
            where = (g.c.id == signup_id) & (g.c.email == vocab.canonical_email(email))
            row = tx.conn.execute(select(g).where(where)).first()
            if row is None:
                return None
            tx.conn.execute(delete(g).where(g.c.email == row.email))
            t = schema.contacts
            found = tx.conn.execute(select(t).where(t.c.email == row.email)).first()
            if found is None:
                # Pages greet by FirstName (Memberium's field): take it from the name given.
                first = {"FirstName": row.name.split()[0]} if row.name.split() else {}
                return contacts.add_contact(tx, row.email, row.name, row.password_hash, first)
            if found.password_hash:
                return None
            # A contact the site already had (imported, added by a CRM) claims its account.
            claimed = {"password_hash": row.password_hash, "name": found.name or row.name}
            tx.conn.execute(update(t).where(t.c.id == found.id).values(**claimed))
            return int(found.id)

        return self.store.run_in_transaction(work)

    def account_state(self, email: str) -> tuple[int, str] | None:
        """(contact id, password hash or "") of the contact with this email, or None."""
        t = schema.contacts
        query = select(t.c.id, t.c.password_hash).where(t.c.email == vocab.canonical_email(email))
        row = run_read(self.store.engine, lambda conn: conn.execute(query).first())
        return None if row is None else (int(row.id), str(row.password_hash or ""))

    # -- account mail ------------------------------------------------------------------------------

    def claim_mail(self, kind: str, email: str, address: str, policy: MailPolicy) -> bool:
        """Record an account email about to be sent; False (nothing recorded) past a limit."""
        m = schema.mail_requests
        key, where = email_key(email), address_key(address)

        def work(tx: Tx) -> bool:
            since = tx.now - policy.window
            tx.conn.execute(delete(m).where(m.c.created_at < tx.now - 2 * policy.window))
            recent = select(func.count()).where(m.c.created_at > since)
            if tx.conn.execute(recent.where(m.c.email == key)).scalar_one() >= policy.per_email:
                return False
            if (
                tx.conn.execute(recent.where(m.c.address == where)).scalar_one()
                >= policy.per_address
            ):
                return False
            values = {"kind": kind, "email": key, "address": where, "created_at": tx.now}
            tx.conn.execute(insert(m).values(values))
            return True

        return self.store.run_in_transaction(work)


def _end_all(tx: Tx, contact_id: int) -> int:
    s = schema.sessions
    return int(tx.conn.execute(delete(s).where(s.c.contact_id == contact_id)).rowcount)


def check_name(name: str) -> str:
    """A display name: at most 200 characters, no control characters (InvalidInput otherwise)."""
    clean = name.strip()
    if len(clean) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in clean):
        raise InvalidInput("a name has at most 200 characters and no control characters")
    return clean


def audit(
    tx: Tx, actor: Actor, action: str, contact_id: int | None, detail: dict[str, Any]
) -> None:
    """Record an admin's change that is not a ledger entry, in the change's own transaction."""
    row = {
        "actor_kind": actor.kind,
        "actor_id": actor.id[:200],
        "action": action,
        "contact_id": contact_id,
        "detail": detail,
        "created_at": tx.now,
    }
    tx.conn.execute(insert(schema.audit_log).values(row))
