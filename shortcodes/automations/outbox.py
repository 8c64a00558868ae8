"""Outbox delivery: emails (SMTP, else ``.eml`` files) and signed webhooks, retried with backoff.

A delivery pass *claims* due messages (``status`` becomes ``sending`` and ``next_attempt_at`` a
lease deadline, in a short transaction; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), sends them
outside any transaction, then records the outcome and a delivery-log row. A worker killed while
sending leaves the message ``sending``; it is claimed again at once when its claimer's process is
gone or is the claiming worker itself (a worker sends only what it claimed in the same pass, so a
message it still holds at its next claim lost its outcome to a dropped connection), else once the
lease passes.

- Emails (rendered from ``<site>/emails/<template>.txt``, else the package's own ``emails/``
  folder, which holds the account emails) go to the SMTP server in ``[automations] smtp`` when set, else to
  ``<instance>/outbox/<id>.eml``, written atomically; an existing file means the message was
  already written, so a retry after a crash never writes it twice. SMTP retries are
  at-least-once; each message carries ``Message-ID: <outbox-ID@shortcodes>`` for receivers.
- Webhooks POST ``{"id", "event", "created_at", "data"}`` as JSON, signed like inbound webhooks:
  ``X-Shortcodes-Timestamp`` and ``X-Shortcodes-Signature: sha256=HMAC(secret, "ts.body")``, plus
  ``X-Shortcodes-Delivery: <id>`` so the receiver can drop a repeat. Any non-2xx answer is a
  failure.
- A failure is retried after ``30 s * 2**(attempts - 1)`` (capped at 6 hours) until
  ``max_attempts``, then the message is ``dead``; :func:`redeliver` queues any message again.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, TemplateNotFound
from sqlalchemy import insert, or_, select, update

from shortcodes.automations.rules import AutomationConfig
from shortcodes.errors import InvalidInput
from shortcodes.membership.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, webhook_signature
from shortcodes.store import Store
from shortcodes.store import schema as db
from shortcodes.store.session import Tx

LEASE = timedelta(minutes=5)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
HTTP_TIMEOUT = 10.0
#: The emails the package itself sends (the account links); a site's ``emails/`` overrides them.
PACKAGE_EMAILS = Path(__file__).with_name("emails")


def worker_id() -> str:
    """``host:pid:random``: unique per worker, and tells whether its process is alive."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt."""
    wait: timedelta = BACKOFF_BASE * 2 ** max(0, min(attempts - 1, 30))
    return min(BACKOFF_CAP, wait)


@dataclass
class Delivery:
    """Delivers the outbox of one store; ``instance_path`` holds the ``.eml`` folder."""

    store: Store
    config: AutomationConfig
    instance_path: Path
    worker: str = field(default_factory=worker_id)
    timeout: float = HTTP_TIMEOUT

    def __post_init__(self) -> None:
        folder = Path(self.config.file).parent / "emails"
        loader = ChoiceLoader([FileSystemLoader(str(folder)), FileSystemLoader(PACKAGE_EMAILS)])
        # Plain-text mail: nothing is HTML, so autoescaping would only corrupt the text.
        self.templates = Environment(loader=loader, autoescape=False)  # noqa: S701

    @property
    def mail_dir(self) -> Path:
        """Where emails are written when no SMTP server is configured."""
        return self.instance_path / "outbox"

    def deliver_due(self, limit: int = 100) -> int:
        """Claim and deliver up to ``limit`` due messages; how many were attempted.

        Outcomes are recorded together after the batch (one transaction, not one per message):
        a crash before that leaves the batch ``sending``, to be sent again once the lease ends.
        """
        claimed = self.store.run_in_transaction(lambda tx: _claim(tx, limit, self.worker))
        outcomes = []
        for row in claimed:
            try:
                note = self.send(row)
                ok = True
            except Exception as exc:  # any failure of the far side is recorded and retried
                note, ok = f"{type(exc).__name__}: {exc}", False
            outcomes.append((row, ok, note))
        if outcomes:
            self.store.run_in_transaction(partial(self._record_all, outcomes=outcomes))
        return len(claimed)

    def _record_all(self, tx: Tx, outcomes: list[tuple[Any, bool, str]]) -> None:
        for row, ok, note in outcomes:
            self._record(tx, row, ok, note)

    def send(self, row: Any) -> str:
        """Deliver one claimed message (no transaction is open while this runs)."""
        if row.kind == "email":
            return self.send_email(row)
        return self.send_webhook(row)

    # -- emails --------------------------------------------------------------------------------

    def message(self, row: Any) -> EmailMessage:
        """The email for an outbox row, its body from ``<site>/emails/<template>.txt`` if any.

        A template's first line ``Subject: ...`` wins over the step's ``subject``, which wins
        over the template's name.
        """
        payload = row.payload
        subject, body = self.render(payload)
        msg = EmailMessage()
        msg["From"] = self.config.email_from
        msg["To"] = payload.get("email", "")
        msg["Subject"] = subject or payload.get("subject") or str(payload.get("template", ""))
        msg["Message-ID"] = f"<outbox-{row.id}@shortcodes>"
        msg["Date"] = format_datetime(row.created_at.replace(tzinfo=UTC))
        msg["X-Shortcodes-Template"] = str(payload.get("template", ""))
        msg.set_content(body)
        return msg

    def render(self, payload: Any) -> tuple[str, str]:
        """(subject or "", body): the site's template when it has one, else a plain summary."""
        template = str(payload.get("template", "message"))
        try:
            text = self.templates.get_template(f"{template}.txt").render(**payload)
        except TemplateNotFound:
            balances = ", ".join(f"{k}: {v}" for k, v in payload.get("balances", {}).items())
            text = f"Hello {payload.get('email', '')},\n\n{template}\n\nYour balances: {balances}\n"
        subject = ""
        if text.startswith("Subject:"):
            first, _, text = text.partition("\n")
            subject = first.removeprefix("Subject:").strip()
        return subject, text.lstrip("\n")

    def send_email(self, row: Any) -> str:
        """SMTP when configured, else an ``.eml`` file named by the message id."""
        msg = self.message(row)
        if self.config.smtp:
            return _smtp(self.config.smtp, msg, self.timeout)
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        path = self.mail_dir / f"{row.id:09d}.eml"
        if path.exists():
            note = f"already written: {path.name}"
        else:
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(bytes(msg))
            os.replace(tmp, path)  # atomic: a reader sees the whole message or none
            note = f"written: {path.name}"
        for stale in self.mail_dir.glob(f"{row.id:09d}.tmp*"):  # left by a killed worker
            stale.unlink(missing_ok=True)
        return note

    # -- webhooks ------------------------------------------------------------------------------

    def webhook_body(self, row: Any) -> bytes:
        """The JSON body of an outgoing webhook."""
        data = {k: v for k, v in row.payload.items() if k not in ("url", "event")}
        doc = {
            "id": int(row.id),
            "event": row.payload.get("event", ""),
            "created_at": row.created_at.isoformat() + "Z",
            "data": data,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def send_webhook(self, row: Any) -> str:
        """POST the signed body; a non-2xx answer raises."""
        url = str(row.payload["url"])
        if urlsplit(url).scheme not in ("http", "https"):
            raise InvalidInput(f"not an http(s) url: {url!r}")
        body = self.webhook_body(row)
        stamp = str(int(self.store.clock().timestamp()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "shortcodes-outbox/1",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: webhook_signature(self.config.webhook_secret, stamp, body),
            "X-Shortcodes-Delivery": str(row.id),
            "X-Shortcodes-Event": str(row.payload.get("event", "")),
        }
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - scheme checked above
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                return f"HTTP {answer.status}"
        except urllib.error.HTTPError as exc:
            exc.close()
            raise RuntimeError(f"HTTP {exc.code}") from None

    # -- outcome -------------------------------------------------------------------------------

    def _record(self, tx: Tx, row: Any, ok: bool, note: str) -> None:
        tx.conn.execute(
            update(db.auto_deliveries)
            .where(db.auto_deliveries.c.id == row.log_id)
            .values(ok=ok, detail=note[:2000], created_at=tx.now)
        )
        o = db.outbox
        if ok:
            values: dict[str, Any] = {"status": "sent", "sent_at": tx.now, "last_error": None}
        elif row.attempts >= self.config.max_attempts:
            values = {"status": "dead", "last_error": note[:2000]}
        else:
            values = {
                "status": "pending",
                "next_attempt_at": tx.now + backoff(row.attempts),
                "last_error": note[:2000],
            }
        # Only the claim this worker holds: a message re-claimed after a lapsed lease is not ours.
        tx.conn.execute(
            update(o).where((o.c.id == row.id) & (o.c.attempts == row.attempts)).values(**values)
        )


def _claim(tx: Tx, limit: int, ident: str) -> list[_Claimed]:
    """Claim due messages, and those whose claimer died (see :func:`_orphans`)."""
    o = db.outbox
    due = (o.c.next_attempt_at <= tx.now) & or_(o.c.status == "pending", o.c.status == "sending")
    query = select(o).where(due).order_by(o.c.next_attempt_at, o.c.id).limit(limit)
    if tx.is_postgres:
        query = query.with_for_update(skip_locked=True)
    rows = [*tx.conn.execute(query).all(), *_orphans(tx, limit, ident)]
    claimed = []
    for row in rows:
        tx.conn.execute(
            update(o)
            .where(o.c.id == row.id)
            .values(status="sending", attempts=row.attempts + 1, next_attempt_at=tx.now + LEASE)
        )
        log_id = tx.conn.execute(
            insert(db.auto_deliveries)
            .values(
                outbox_id=row.id,
                attempt=row.attempts + 1,
                ok=False,
                detail="sending",
                worker=ident[:120],
                created_at=tx.now,
            )
            .returning(db.auto_deliveries.c.id)
        ).scalar_one()
        claimed.append(
            _Claimed(row.id, row.kind, row.payload, row.attempts + 1, row.created_at, int(log_id))
        )
    return claimed


def _orphans(tx: Tx, limit: int, ident: str) -> list[Any]:
    """Messages still leased (``sending``) by a claimer that is gone or is ``ident`` itself.

    A killed worker's messages would otherwise wait for the lease to end; the claimer is known
    from the attempt's delivery-log row. The claiming worker's own leases are orphans too: it
    is not sending anything while it claims, so a message it still holds is one whose outcome
    (or whose claim's commit reply) a dropped connection lost.
    """
    o, d = db.outbox, db.auto_deliveries
    query = (
        select(o, d.c.worker)
        .join(d, (d.c.outbox_id == o.c.id) & (d.c.attempt == o.c.attempts))
        .where((o.c.status == "sending") & (o.c.next_attempt_at > tx.now))
        .order_by(o.c.id)
        .limit(limit)
    )
    if tx.is_postgres:
        query = query.with_for_update(of=o, skip_locked=True)
    rows = tx.conn.execute(query).all()
    return [row for row in rows if row.worker == ident[:120] or not process_alive(row.worker)]


def process_alive(holder: str) -> bool:
    """False only when ``holder`` (``host:pid:...``) ran on this machine and its process is gone."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    kind: str
    payload: Any
    attempts: int
    created_at: datetime
    log_id: int


def _smtp(url: str, msg: EmailMessage, timeout: float) -> str:
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port
    if parts.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port or 465, timeout=timeout)
    else:
        client = smtplib.SMTP(host, port or 25, timeout=timeout)
    with client:
        if parts.username:
            client.login(parts.username, parts.password or "")
        refused = client.send_message(msg)
    if refused:
        raise RuntimeError(f"recipients refused: {sorted(refused)}")
    return f"smtp {host}"


def redeliver(store: Store, outbox_id: int) -> str:
    """Queue a message again (dead, failed or even sent), due now; its previous status."""

    def work(tx: Tx) -> str:
        o = db.outbox
        row = tx.conn.execute(select(o.c.status).where(o.c.id == outbox_id)).first()
        if row is None:
            raise InvalidInput(f"no outbox message {outbox_id}")
        tx.conn.execute(
            update(o)
            .where(o.c.id == outbox_id)
            .values(status="pending", next_attempt_at=tx.now, attempts=0)
        )
        return str(row.status)

    return store.run_in_transaction(work)


def delivery_log(store: Store, outbox_id: int) -> list[Any]:
    """Every recorded attempt of one message, oldest first."""
    t = db.auto_deliveries
    with store.engine.connect() as conn:
        return list(conn.execute(select(t).where(t.c.outbox_id == outbox_id).order_by(t.c.id)))
