"""Drips under real worker processes: SIGKILLed mid-release and restarted, and two racing.

Each test starts the pottery drip (``tests.support.drips``) for many members in January 2026 and
runs ``python -m shortcodes worker`` processes on the real clock (months later), so every item is
due at once: four releases per member, each with its item's run, and one "lesson 2" email per
member. Whatever is killed, every item is released once, every tag applied once, every email
queued and delivered once, and the ledger verifies.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from shortcodes.store import contacts as store_contacts
from shortcodes.store import schema as db
from shortcodes.store.session import Tx
from tests.automations.test_automations_drip import config  # noqa: F401 - the drip site's rules
from tests.automations.test_automations_reliability import start, worker_cmd
from tests.support.automations import Harness
from tests.support.drips import DRIP_SITE_TOML
from tests.support.paths import ROOT

ITEMS = ("lesson-1", "lesson-2", "lesson-3", "kiln-day")


@pytest.fixture
def drip_site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "site.toml").write_text(DRIP_SITE_TOML, encoding="utf-8")
    return folder / "site.toml"


def seed(h: Harness, members: int) -> list[int]:
    """``members`` contacts given "Pottery Member" (each a tag_applied event that starts a drip)."""
    ids = [h.contact(f"m{n}@example.com") for n in range(members)]
    tag = h.store.get_tag("Pottery Member")

    def work(tx: Tx, chunk: list[int]) -> None:
        for contact_id in chunk:
            store_contacts.apply_tag(tx, contact_id, tag, "seed")

    for first in range(0, members, 500):
        h.store.run_in_transaction(lambda tx, f=first: work(tx, ids[f : f + 500]))
    return ids


def rows(h: Harness, query: Any) -> list[Any]:
    with h.store.engine.connect() as conn:
        return list(conn.execute(query))


def releases(h: Harness) -> int:
    return int(rows(h, select(func.count()).select_from(db.drip_releases))[0][0])


def assert_released_exactly_once(h: Harness, members: list[int], instance: Path) -> None:
    e, r, o = db.events, db.auto_runs, db.outbox
    n = len(members)
    assert releases(h) == 4 * n
    drip_kinds = ["drip_started", "unlocked", "drip_paused", "drip_resumed"]
    by_kind = dict(
        rows(h, select(e.c.kind, func.count()).where(e.c.kind.in_(drip_kinds)).group_by(e.c.kind))
    )
    assert by_kind == {"drip_started": n, "unlocked": 4 * n}, "one unlocked event per release"
    runs = dict(
        rows(h, select(r.c.status, func.count()).where(r.c.rule == "pottery").group_by(r.c.status))
    )
    assert runs == {"done": 4 * n}, "one run of the item's steps per release"
    for member in members[:: max(1, n // 50)]:
        assert {t for t in h.tags(member) if t != "Pottery Member"} == {
            "Pottery Lesson 1",
            "Pottery Lesson 2",
            "Pottery Lesson 3",
            "Kiln Day",
        }
    applied = rows(h, select(func.count()).where(e.c.kind == "tag_applied"))[0][0]
    assert applied == 5 * n, "the access tag and four item tags, each applied once"
    mails = rows(h, select(o.c.id, o.c.status))
    assert len(mails) == n, "one lesson-2 email per member"
    assert {m.status for m in mails} == {"sent"}
    files = sorted(p.name for p in (instance / "outbox").glob("*.eml"))
    assert files == sorted(f"{m.id:09d}.eml" for m in mails), "one file per message"
    assert h.store.verify().ok


@pytest.mark.slow
def test_a_worker_killed_mid_release_and_restarted_releases_every_item_once(
    harness: Harness, drip_site: Path, db_url: str, tmp_path: Path
) -> None:
    members = seed(harness, 500)
    instance = tmp_path / "worker-instance"
    cmd = worker_cmd(db_url, drip_site, instance, "--batch", "10")
    kills = 0
    for threshold in (300, 1200):
        proc = start(cmd)
        deadline = time.monotonic() + 120
        while releases(harness) < threshold and proc.poll() is None:
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    assert kills >= 1
    assert releases(harness) < 4 * len(members), "killed before finishing"
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert_released_exactly_once(harness, members, instance)


@pytest.mark.slow
def test_two_worker_processes_racing_on_the_same_drips_release_each_item_once(
    harness: Harness, drip_site: Path, db_url: str, tmp_path: Path
) -> None:
    members = seed(harness, 400)
    instance = tmp_path / "shared-instance"
    procs = [start(worker_cmd(db_url, drip_site, instance, "--batch", "10")) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert_released_exactly_once(harness, members, instance)
