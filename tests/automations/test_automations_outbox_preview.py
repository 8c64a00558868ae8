"""Outbox delivery (signed webhooks with backoff, .eml files, redelivery) and the dry run."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shortcodes.automations import parse_automations, preview, redeliver
from shortcodes.automations.outbox import _claim, backoff, delivery_log
from shortcodes.store import schema as db
from tests.support.automations import SITE_TOML, Harness
from tests.support.db import all_rows


class Receiver:
    """A real HTTP endpoint that fails the first ``fail`` requests with 503."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.requests: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                failing = len(outer.requests) <= outer.fail
                self.send_response(503 if failing else 200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(fail=3)
    yield found
    found.close()


def with_webhook_rule(harness: Harness, url: str) -> Harness:
    rule = f"""
[[rules]]
name = "tell-the-crm"
trigger = "tag_applied('Subscriber')"
steps = [{{ do = "webhook", url = "{url}", event = "member.joined" }}]
"""
    config = parse_automations(SITE_TOML + rule, harness.config.file)
    return Harness(harness.store, config, harness.clock, harness.instance)


def outbox_row(harness: Harness, kind: str) -> Any:
    rows = harness.outbox(kind)
    assert len(rows) == 1
    return rows[0]


def test_outgoing_webhook_is_signed_retried_with_backoff_and_logged(
    harness: Harness, receiver: Receiver
) -> None:
    h = with_webhook_rule(harness, receiver.url)
    ann = h.contact("ann@example.com", credits=7)
    h.store.apply_tag(ann, "Subscriber")
    h.drain()  # attempt 1 fails
    row = outbox_row(h, "webhook")
    assert (row.status, row.attempts) == ("pending", 1)
    h.advance(seconds=29)
    assert len(receiver.requests) == 1, "retried before the backoff ended"
    h.advance(seconds=1)  # 30 s: attempt 2 fails
    h.advance(seconds=60)  # 60 s later: attempt 3 fails
    assert len(receiver.requests) == 3
    h.advance(seconds=119)
    assert len(receiver.requests) == 3
    h.advance(seconds=1)  # 120 s: attempt 4 succeeds
    row = outbox_row(h, "webhook")
    assert (row.status, row.attempts) == ("sent", 4)
    h.advance(days=1)
    assert len(receiver.requests) == 4, "a sent message is never sent again"

    headers, body = receiver.requests[-1]
    stamp = headers["X-Shortcodes-Timestamp"]
    mac = hmac.new(b"automation-test-secret", f"{stamp}.".encode() + body, hashlib.sha256)
    assert headers["X-Shortcodes-Signature"] == "sha256=" + mac.hexdigest()
    assert headers["X-Shortcodes-Delivery"] == str(row.id)
    doc = json.loads(body)
    assert doc["event"] == "member.joined"
    # What another site's /hooks/events/<name> takes: an event id it dedupes, and the contact.
    assert (doc["event_id"], doc["contact"]) == (f"outbox:{row.id}", "ann@example.com")
    assert doc["data"]["email"] == "ann@example.com"
    assert doc["data"]["balances"] == {"_Credits": 7}
    assert [e.ok for e in delivery_log(h.store, row.id)] == [False, False, False, True]
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 20)] == [30, 60, 120, 6 * 3600]


def test_a_dead_webhook_is_redelivered_on_request(harness: Harness) -> None:
    dead = Receiver(fail=100)
    try:
        h = with_webhook_rule(harness, dead.url)
        bo = h.contact("bo@example.com")
        h.store.apply_tag(bo, "Subscriber")
        h.drain()
        for _ in range(h.config.max_attempts):
            h.advance(hours=7)
        row = outbox_row(h, "webhook")
        assert (row.status, row.attempts) == ("dead", h.config.max_attempts)
        assert len(dead.requests) == h.config.max_attempts
        dead.fail = 0
        assert redeliver(h.store, row.id) == "dead"
        h.drain()
        assert outbox_row(h, "webhook").status == "sent"
        assert len(dead.requests) == h.config.max_attempts + 1
    finally:
        dead.close()


def test_an_email_file_already_written_before_a_crash_is_not_written_twice(
    harness: Harness,
) -> None:
    cy = harness.contact("cy@example.com")
    harness.event("payment_succeeded", cy, {"product": "monthly", "payment_id": "p1"})
    worker = harness.worker()
    worker.run_once()  # step ran and the email was delivered
    row = outbox_row(harness, "email")
    # Simulate a crash after writing the file but before recording it: back to "sending".
    with harness.store.engine.begin() as conn:
        conn.execute(db.outbox.update().values(status="sending", next_attempt_at=row.created_at))
    harness.advance(minutes=10)
    files = list((harness.instance / "outbox").glob("*.eml"))
    assert len(files) == 1
    assert outbox_row(harness, "email").status == "sent"
    assert "already written" in delivery_log(harness.store, row.id)[-1].detail


def test_a_worker_whose_delivery_outcome_was_lost_resends_at_once_and_others_leave_it(
    harness: Harness,
) -> None:
    """A dropped connection can lose a pass's outcome after the claim committed; the message
    stays leased. Its own worker takes it back at its next claim (it is sending nothing while it
    claims); another live worker leaves it alone until the lease ends."""
    cy = harness.contact("cy@example.com")
    harness.event("payment_succeeded", cy, {"product": "monthly", "payment_id": "p1"})
    worker = harness.worker(deliver=False)
    worker.run_once()  # the step queued the email; nothing delivered yet
    other = harness.worker().delivery
    claimed = harness.store.run_in_transaction(lambda tx: _claim(tx, 10, worker.ident))
    assert [r.kind for r in claimed] == ["email"]  # claimed, then the outcome never recorded
    assert other.deliver_due() == 0, "a live worker's lease is not another worker's to take"
    assert outbox_row(harness, "email").status == "sending"
    assert worker.delivery.deliver_due() == 1, "its own lease comes back at once"
    row = outbox_row(harness, "email")
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(list((harness.instance / "outbox").glob("*.eml"))) == 1


def test_preview_prints_the_timeline_and_writes_nothing(harness: Harness) -> None:
    dee = harness.contact("dee@example.com", credits=4)
    before = all_rows(harness.store)
    drip = preview(harness.store, harness.config, "drip-course", "dee@example.com")
    lines = drip.lines()
    assert lines[0] == "rule drip-course for dee@example.com: conditions hold"
    applied = [line.strip() for line in lines if "tag applied" in line]
    assert applied == [f"tag applied: Drip Day {n}" for n in range(1, 6)]
    offsets = [item.offset.days for item in drip.items if item.kind == "apply_tag"]
    assert offsets == [0, 1, 2, 3, 4]

    monthly = preview(harness.store, harness.config, "monthly-credits", dee)
    assert "ledger entry: _Credits +50 = 54" in "\n".join(monthly.lines())
    assert "email 'monthly-credits' to dee@example.com (balances: _Credits 54)" in "\n".join(
        monthly.lines()
    )
    lend = preview(harness.store, harness.config, "lending-lock", dee)
    assert any(
        "scheduled: remove_tag 'Lock Field Guide' at 2026-01-15 12:00" in line
        for line in lend.lines()
    )
    refused = preview(harness.store, harness.config, "lending-check-in", dee)
    assert refused.branch == "otherwise"
    assert all_rows(harness.store) == before, "a preview must not write anything"
