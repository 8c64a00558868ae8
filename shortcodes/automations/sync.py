"""Site-to-site sync: this site's contact changes, sent to its ``[[sync]]`` peers as signed webhooks.

Several sites can share one contact base (the seeds' "follow the Math post with an Update
Contact post to your other sites")::

    [automations]
    site_id = "academy"                # how peers know this site (the origin of its changes)

    [[sync]]
    peer = "shop"                      # the peer's own site_id
    url = "https://shop.example.com"   # its base URL: deliveries go to <url>/hooks/...
    secret = "the peer's webhook secret"
    send = ["tags", "fields", "balances"]

The worker's dispatcher turns each change event it reads (``tag_applied``/``tag_removed`` for
``tags``, ``field_set`` for ``fields``, ``balance_changed`` for ``balances``: the new balance,
sent as a Math ``set``) into one outbox webhook per peer that wants it, in the dispatch
transaction, keyed by peer and event so it is queued once. The body is what the peer's inbound
hook takes (``/hooks/tags/apply``, ``/hooks/contacts/update``, ``/hooks/credits``), with the
contact by email, an ``event_id`` of ``<site_id>:<event id>`` (the peer dedupes it like any
webhook, so a redelivery changes nothing) and ``origin``: the sites the change has been through.
The peer records the change's events as caused by that origin, and never sends a change to a
site in its origin: no echo, however the peers are wired.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select

from shortcodes.membership import vocabulary as vocab
from shortcodes.membership.keys import Key, Keys
from shortcodes.membership.source import Node
from shortcodes.store import schema as db
from shortcodes.store.events import enqueue_many, outbox_row
from shortcodes.store.session import Tx

#: What a peer can be sent -> the event kinds that carry it.
SENDS: dict[str, tuple[str, ...]] = {
    "tags": ("tag_applied", "tag_removed"),
    "fields": ("field_set",),
    "balances": ("balance_changed",),
}
SYNC_KEYS = Keys(
    "[[sync]]",
    "A peer site that this site's contact changes are sent to, as signed webhooks its inbound "
    "hooks accept (see `[automations] site_id`).",
    {
        "peer": Key("name", "the peer's own `[automations] site_id`", "", '"shop"', required=True),
        "url": Key(
            "http(s) URL",
            "the peer's base URL; deliveries go to `<url>/hooks/...`",
            "",
            '"https://shop.example.com"',
            required=True,
        ),
        "secret": Key(
            "text, 16 characters or more",
            "the peer's webhook secret, which deliveries are signed with",
            "",
            '"the-shops-long-random-webhook-secret"',
            required=True,
        ),
        "send": Key(
            "list of tags, fields, balances",
            "what changes the peer is sent: tags applied and removed, custom fields, credit "
            "balances (as the new balance)",
            "",
            '["tags", "fields", "balances"]',
            required=True,
        ),
    },
)
#: The most sites a change may have been through (a longer ``origin`` is refused).
MAX_ORIGINS = 20


@dataclass(frozen=True, slots=True)
class SyncPeer:
    """One ``[[sync]]`` peer: its site id, base URL, shared secret and what it is sent."""

    peer: str
    url: str
    secret: str
    send: tuple[str, ...]

    def wants(self, kind: str) -> bool:
        """Whether events of ``kind`` are sent to this peer."""
        return any(kind in SENDS[what] for what in self.send)


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """This site's id and its peers (none: nothing is sent)."""

    site_id: str = ""
    peers: tuple[SyncPeer, ...] = ()

    def kinds(self) -> set[str]:
        """The event kinds some peer is sent."""
        return {kind for peer in self.peers for what in peer.send for kind in SENDS[what]}

    def peer(self, name: str) -> SyncPeer | None:
        """The peer with this site id, if configured."""
        return next((p for p in self.peers if p.peer == name), None)


def load_sync(root: Node, site_id: str | None) -> SyncConfig:
    """Validate ``[[sync]]`` (``site_id`` is ``[automations] site_id``, needed with peers)."""
    peers: list[SyncPeer] = []
    for node in root.child("sync", []).elements("a list of [[sync]] tables"):
        node.table(SYNC_KEYS, what="a [[sync]] table")
        for key in SYNC_KEYS:
            if key not in node:
                raise node.fail(f"missing: every [[sync]] peer needs {key!r}", key)
        name = node.child("peer").check(lambda v: vocab.name(v, "the peer's site_id"))
        if site_id is None:
            raise node.fail("set [automations] site_id: peers know this site by it", "peer")
        if name == site_id:
            raise node.fail("a site cannot sync with itself", "peer")
        if any(p.peer == name for p in peers):
            raise node.fail("another [[sync]] table names this peer", "peer")
        url = node.child("url").check(vocab.http_url).rstrip("/")
        secret = node.child("secret").check(_secret)
        send = node.child("send").check(_send)
        peers.append(SyncPeer(name, url, secret, send))
    return SyncConfig(site_id or "", tuple(peers))


def _secret(value: Any) -> str:
    text = vocab.text(value, "the shared secret", 500)
    if len(text) < 16:
        raise ValueError("the shared secret must be at least 16 characters")
    return text


def _send(value: Any) -> tuple[str, ...]:
    ok = isinstance(value, list) and value and all(v in SENDS for v in value)
    if not ok:
        raise ValueError(f"must list what to send, some of {', '.join(SENDS)}; got {value!r}")
    return tuple(dict.fromkeys(value))


def origins(data: Mapping[str, Any]) -> list[str]:
    """The sites an event's change came through (empty: it was made here)."""
    cause = data.get("cause")
    found = cause.get("sync") if isinstance(cause, dict) else None
    return [str(s) for s in found] if isinstance(found, list) else []


def check_origin(value: Any) -> list[str]:
    """An inbound ``origin``: a list of site ids; ValueError otherwise."""
    if not isinstance(value, list) or not value or len(value) > MAX_ORIGINS:
        raise ValueError(
            f"'origin' must list the sites the change came through (1 to {MAX_ORIGINS})"
        )
    return [vocab.name(v, "each 'origin' entry, a site_id") for v in value]


def queue_outbound(tx: Tx, config: SyncConfig, events: Sequence[Any]) -> int:
    """Queue the webhooks that send ``events`` to the peers that want them; how many."""
    if not config.peers:
        return 0
    # Before anything else: the first pass that sees a peer marks where its history starts,
    # even when that pass has nothing to send (a fresh site's first changes come later).
    starts = {peer.peer: _start(tx, peer) for peer in config.peers}
    wanted = [e for e in events if e.contact_id is not None and e.kind in config.kinds()]
    if not wanted:
        return 0
    c = db.contacts
    ids = sorted({int(e.contact_id) for e in wanted})
    emails = dict(tx.conn.execute(select(c.c.id, c.c.email).where(c.c.id.in_(ids))).all())
    rows = []
    for event in wanted:
        seen = origins(event.data)
        body = _body(event, emails[event.contact_id])
        if body is None:
            continue
        path, doc = body
        for peer in config.peers:
            if not peer.wants(event.kind) or peer.peer in seen or event.id <= starts[peer.peer]:
                continue
            payload = {
                "url": f"{peer.url}/hooks/{path}",
                "event": f"sync.{event.kind}",
                "peer": peer.peer,
                "body": {
                    **doc,
                    "event_id": f"{config.site_id}:{event.id}",
                    "origin": [*seen, config.site_id],
                },
            }
            key = f"sync:{peer.peer}:{event.id}"
            rows.append(outbox_row(tx, "webhook", key, payload, int(event.contact_id)))
    enqueue_many(tx, rows)
    return len(rows)


def _start(tx: Tx, peer: SyncPeer) -> int:
    """The id of the last event recorded before this peer was first seen by a worker: a new
    peer is sent the changes made from then on, not the site's whole history (kept in
    ``auto_dispatch`` under a name derived from the peer's id)."""
    t = db.auto_dispatch
    name = "sync:" + hashlib.sha256(peer.peer.encode()).hexdigest()[:30]
    row = tx.conn.execute(select(t.c.floor).where(t.c.name == name)).first()
    if row is not None:
        return int(row.floor)
    floor = int(tx.conn.execute(select(func.max(db.events.c.id))).scalar() or 0)
    values = {"name": name, "floor": floor, "candidate": floor, "candidate_at": 0.0}
    tx.conn.execute(insert(t).values(**values))
    return floor


def _body(event: Any, email: str) -> tuple[str, dict[str, Any]] | None:
    """The peer's hook and what it is sent for one event (None: nothing to send)."""
    data = event.data
    if event.kind in ("tag_applied", "tag_removed"):
        path = "tags/apply" if event.kind == "tag_applied" else "tags/remove"
        return path, {"contact": email, "tag": data["tag"]}
    if event.kind == "field_set":
        return "contacts/update", {"contact": email, "fields": {data["field"]: data["value"]}}
    if event.kind == "balance_changed":
        body = {"contact": email, "field": data["field"], "operation": "set"}
        return "credits", {**body, "value": data["balance"]}
    return None
