"""Site-to-site sync (issue 16): two real server processes on loopback share their contacts.

Site A and site B are the demo site with a ``[[sync]]`` peer each; changes posted to one site's
signed webhooks reach the other through the real worker process (``python -m shortcodes worker``),
which signs each delivery with the peer's secret and gives it an ``event_id`` the peer
deduplicates. A change that came from a peer is never sent back (its ``origin`` names the sites
it went through). Bad ``[[sync]]`` tables are refused with file:line:column.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from shortcodes.automations import parse_automations
from shortcodes.automations.outbox import redeliver
from shortcodes.errors import ConfigError
from shortcodes.store import schema as db
from tests.support.live_server import free_port
from tests.support.paths import SITE
from tests.support.sync import Site, post_signed, serve

pytestmark = pytest.mark.slow

SECRETS = {"a": "site-a-webhook-secret-0123456789", "b": "site-b-webhook-secret-0123456789"}


def site_folder(tmp: Path, me: str, peer: str, peer_port: int) -> Path:
    """The demo site as ``me``, syncing tags, fields and balances to ``peer``."""
    folder = tmp / f"site-{me}"
    shutil.copytree(SITE, folder)
    toml = (folder / "site.toml").read_text(encoding="utf-8")
    toml = toml.replace(
        'secret = "demo-webhook-secret-not-for-production"', f'secret = "{SECRETS[me]}"'
    )
    toml += f"""
[automations]
site_id = "site-{me}"

[[sync]]
peer = "site-{peer}"
url = "http://127.0.0.1:{peer_port}"
secret = "{SECRETS[peer]}"
send = ["tags", "fields", "balances"]
"""
    (folder / "site.toml").write_text(toml, encoding="utf-8")
    return folder


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[tuple[Site, Site]]:
    ports = {"a": free_port(), "b": free_port()}
    started: list[Site] = []
    try:
        for me, peer in (("a", "b"), ("b", "a")):
            folder = site_folder(tmp_path, me, peer, ports[peer])
            started.append(serve(me, folder, SECRETS[me], tmp_path, ports[me]))
        for site in started:  # the workers start: changes from now on are sent to the peer
            site.work()
        yield started[0], started[1]
    finally:
        for site in started:
            site.server.__exit__(None, None, None)


def test_a_tag_applied_on_site_a_reaches_site_b_once_and_is_not_sent_back(
    sites: tuple[Site, Site],
) -> None:
    a, b = sites
    answer = a.post(
        "tags/apply", {"event_id": "e-1", "contact": "rich@example.com", "tag": "All Access"}
    )
    assert answer["ok"] is True
    a.work()  # A's worker queues the sync delivery and sends it to B's server
    [(status, url, body)] = a.sync_webhooks()
    assert (status, url) == ("sent", f"{b.server.url}/hooks/tags/apply")
    assert body["contact"] == "rich@example.com"
    assert body["origin"] == ["site-a"]
    assert str(body["event_id"]).startswith("site-a:")
    with b.store() as store:
        assert "All Access" in {t.name for t in store.get_contact("rich@example.com").tags}
    b.work()  # B's dispatcher sees the change came from site-a: nothing goes back
    assert b.sync_webhooks() == []
    # A redelivery of the same message is deduplicated by B: still one change there.
    with a.store() as store:
        o = db.outbox
        with store.engine.connect() as conn:
            outbox_id = conn.execute(select(o.c.id).where(o.c.kind == "webhook")).scalar_one()
        redeliver(store, outbox_id)
    a.work()
    e = db.events
    with b.store() as store, store.engine.connect() as conn:
        applied = conn.execute(select(e.c.data).where(e.c.kind == "tag_applied")).scalars()
        assert [d["tag"] for d in applied if d.get("cause")] == ["All Access"]
    assert [s for s, _u, _b in a.sync_webhooks()] == ["sent"]


def test_fields_and_balances_sync_both_ways_without_echo(sites: tuple[Site, Site]) -> None:
    a, b = sites
    b.post(
        "contacts/update",
        {"event_id": "f-1", "contact": "poor@example.com", "fields": {"City": "Lyon"}},
    )
    a.post(
        "credits",
        {
            "event_id": "m-1",
            "contact": "poor@example.com",
            "field": "_Credits",
            "operation": "add",
            "value": 7,
        },
    )
    b.work()
    a.work()
    b.work()
    a.work()
    with a.store() as store:
        assert store.get_contact("poor@example.com").fields["City"] == "Lyon"
        assert store.balance("poor@example.com") == 12
        assert store.verify().ok
    with b.store() as store:
        assert store.balance("poor@example.com") == 12
        assert store.verify().ok
    # One delivery each way, none echoed back.
    assert [(s, u.rsplit("/hooks/", 1)[1]) for s, u, _ in a.sync_webhooks()] == [
        ("sent", "credits")
    ]
    assert [(s, u.rsplit("/hooks/", 1)[1]) for s, u, _ in b.sync_webhooks()] == [
        ("sent", "contacts/update")
    ]


def test_a_sync_delivery_signed_with_the_wrong_secret_is_refused_by_the_peer(
    sites: tuple[Site, Site],
) -> None:
    _a, b = sites
    body = {
        "event_id": "x",
        "contact": "rich@example.com",
        "tag": "All Access",
        "origin": ["site-a"],
    }
    status, answer = post_signed(f"{b.server.url}/hooks/tags/apply", body, SECRETS["a"])
    assert (status, answer["error"]) == (401, "bad_signature")


def test_a_malformed_origin_is_a_422_and_changes_nothing(sites: tuple[Site, Site]) -> None:
    _a, b = sites
    body = {"event_id": "y", "contact": "rich@example.com", "tag": "All Access", "origin": "site-a"}
    status, answer = post_signed(f"{b.server.url}/hooks/tags/apply", body, SECRETS["b"])
    assert (status, answer["error"]) == (422, "bad_origin")
    with b.store() as store:
        assert "All Access" not in {t.name for t in store.get_contact("rich@example.com").tags}


HEAD = '[credits]\nfields = ["_Credits"]\n\n[automations]\nsite_id = "academy"\n'


@pytest.mark.parametrize(("sync", "key", "line", "reason"), [
    ('[[sync]]\npeer = "shop"\nurl = "ftp://x"\nsecret = "0123456789abcdef"\nsend = ["tags"]\n',
     "sync[0].url", 9, None),
    ('[[sync]]\npeer = "shop"\nurl = "https://shop.example.com"\nsecret = "short"\nsend = ["tags"]\n',
     "sync[0].secret", 10, "the shared secret must be at least 16 characters"),
    ('[[sync]]\npeer = "shop"\nurl = "https://shop.example.com"\nsecret = "0123456789abcdef"\nsend = ["tags", "pets"]\n',
     "sync[0].send", 11, "must list what to send, some of tags, fields, balances; got ['tags', 'pets']"),
    ('[[sync]]\npeer = "academy"\nurl = "https://shop.example.com"\nsecret = "0123456789abcdef"\nsend = ["tags"]\n',
     "sync[0].peer", 8, "a site cannot sync with itself"),
    ('[[sync]]\npeer = "shop"\nurl = "https://shop.example.com"\nsecret = "0123456789abcdef"\n',
     "sync[0].send", 7, "missing: every [[sync]] peer needs 'send'"),
    ('[[sync]]\npeer = "shop"\nurl = "https://shop.example.com"\nsecret = "0123456789abcdef"\nsend = ["tags"]\nfilter = 1\n',
     "sync[0].filter", 12, None),
])  # fmt: skip
def test_a_bad_sync_table_names_its_key_and_line(
    sync: str, key: str, line: int, reason: str | None
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_automations(HEAD + "\n" + sync, "site.toml")
    assert (info.value.key, info.value.line) == (key, line)
    if reason is not None:
        assert info.value.reason == reason


def test_sync_peers_need_a_site_id() -> None:
    text = '[[sync]]\npeer = "shop"\nurl = "https://shop.example.com"\nsecret = "0123456789abcdef"\nsend = ["tags"]\n'
    with pytest.raises(ConfigError) as info:
        parse_automations(text, "site.toml")
    assert info.value.reason == "set [automations] site_id: peers know this site by it"
    assert str(info.value).startswith("site.toml:2:1: sync[0].peer: ")
