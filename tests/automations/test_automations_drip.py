"""Drip sequences on SQLite and PostgreSQL, with a moved clock and the worker's real passes.

The pottery drip (``tests.support.drips``): lesson 1 at the start, lesson 2 after 2 days and
lesson 3 after 4 days of *active* time (holding "Pottery Member"), the kiln day on 2026-01-20;
a rule emails when lesson 2 unlocks. The clock starts at 2026-01-01 12:00 UTC.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from shortcodes.automations import AutomationConfig, parse_automations, preview
from tests.automations.test_automations_cli_shortcodes import cli
from tests.support.automations import Harness
from tests.support.db import all_rows
from tests.support.drips import (
    DRIP_SITE_TOML,
    active_time,
    drip_events,
    releases,
    tag_events,
)


@pytest.fixture(scope="session")
def config() -> AutomationConfig:
    """The automations test site with the pottery drip."""
    return parse_automations(DRIP_SITE_TOML, "site.toml")


def lessons(h: Harness, contact: int) -> set[str]:
    return {t for t in h.tags(contact) if t.startswith("Pottery Lesson") or t == "Kiln Day"}


def test_items_are_released_by_active_time_and_lesson_2_emails_once(harness: Harness) -> None:
    ann = harness.contact("ann@example.com")
    harness.store.apply_tag(ann, "Pottery Member")
    harness.drain()
    assert lessons(harness, ann) == {"Pottery Lesson 1"}
    harness.advance(days=2, seconds=-1)
    assert lessons(harness, ann) == {"Pottery Lesson 1"}
    harness.advance(seconds=1)
    assert lessons(harness, ann) == {"Pottery Lesson 1", "Pottery Lesson 2"}
    harness.advance(days=2)
    assert lessons(harness, ann) == {f"Pottery Lesson {n}" for n in (1, 2, 3)}
    harness.advance(days=20)
    mails = harness.emails("lesson-unlocked")
    assert [(m["email"], m["subject"], m["rule"]) for m in mails] == [
        ("ann@example.com", "Lesson 2 is open", "lesson-2-email")
    ]
    assert releases(harness, ann) == [
        (ann, "lesson-1"),
        (ann, "lesson-2"),
        (ann, "lesson-3"),
        (ann, "kiln-day"),
    ]


def test_a_lapse_pauses_the_count_and_a_return_resumes_it_without_resending(
    harness: Harness,
) -> None:
    bo = harness.contact("bo@example.com")
    harness.store.apply_tag(bo, "Pottery Member")
    harness.advance(days=1)
    harness.store.remove_tag(bo, "Pottery Member")  # the subscription lapses after one day
    harness.advance(days=5)
    assert lessons(harness, bo) == {"Pottery Lesson 1"}, "no lesson 2 while paused"
    assert active_time(harness, bo) == timedelta(days=1)
    harness.store.apply_tag(bo, "Pottery Member")  # back: the drip resumes, never starts over
    harness.advance(days=1, seconds=-1)
    assert lessons(harness, bo) == {"Pottery Lesson 1"}
    harness.advance(seconds=1)
    assert lessons(harness, bo) == {"Pottery Lesson 1", "Pottery Lesson 2"}
    assert tag_events(harness, bo, "Pottery Lesson 1") == 1, "lesson 1 was not released again"
    assert [e["kind"] for e in drip_events(harness, bo)] == [
        "drip_started",
        "unlocked",
        "drip_paused",
        "drip_resumed",
        "unlocked",
    ]
    paused, resumed = (drip_events(harness, bo, k)[0] for k in ("drip_paused", "drip_resumed"))
    assert (paused["at"], resumed["at"]) == ("2026-01-02 12:00:00", "2026-01-07 12:00:00")
    assert len(harness.emails("lesson-unlocked")) == 1


def test_removing_and_reapplying_the_trigger_tag_never_restarts_or_double_sends(
    harness: Harness,
) -> None:
    cy = harness.contact("cy@example.com")
    for _ in range(3):
        harness.store.apply_tag(cy, "Pottery Member")
        harness.advance(days=1)
        harness.store.remove_tag(cy, "Pottery Member")
        harness.advance(hours=1)
    assert active_time(harness, cy) == timedelta(days=3)
    assert releases(harness, cy) == [(cy, "lesson-1"), (cy, "lesson-2")]
    assert len(harness.emails("lesson-unlocked")) == 1
    assert [e["kind"] for e in drip_events(harness, cy, "drip_started")] == ["drip_started"]


def test_a_grant_that_expires_pauses_at_its_expiry_not_when_the_worker_looks(
    harness: Harness,
) -> None:
    dee = harness.contact("dee@example.com")
    harness.store.grant(dee, "Pottery Member", "36h")
    harness.drain()
    harness.advance(days=5)  # the worker's next look is long after the expiry
    assert active_time(harness, dee) == timedelta(hours=36)
    assert lessons(harness, dee) == {"Pottery Lesson 1"}
    assert drip_events(harness, dee, "drip_paused")[0]["at"] == "2026-01-03 00:00:00"


def test_a_calendar_item_comes_on_its_date_or_when_access_returns_after_it(
    harness: Harness,
) -> None:
    eve = harness.contact("eve@example.com")
    fay = harness.contact("fay@example.com")
    harness.store.apply_tag(eve, "Pottery Member")
    harness.store.apply_tag(fay, "Pottery Member")
    harness.advance(days=10)
    harness.store.remove_tag(fay, "Pottery Member")
    harness.advance(days=8, hours=11, minutes=59)  # 2026-01-19 23:59
    assert "Kiln Day" not in harness.tags(eve)
    harness.advance(minutes=1)  # midnight, 2026-01-20
    assert "Kiln Day" in harness.tags(eve)
    assert "Kiln Day" not in harness.tags(fay), "no release without access"
    harness.advance(days=3)
    harness.store.apply_tag(fay, "Pottery Member")
    harness.drain()
    assert "Kiln Day" in harness.tags(fay)
    assert [item for _, item in releases(harness, fay)] == [
        "lesson-1",
        "lesson-2",
        "lesson-3",
        "kiln-day",
    ]


def test_a_member_who_joins_after_the_date_gets_the_calendar_item_at_the_start(
    harness: Harness,
) -> None:
    harness.clock.advance(days=30)
    gus = harness.contact("gus@example.com")
    harness.store.apply_tag(gus, "Pottery Member")
    harness.drain()
    assert lessons(harness, gus) == {"Pottery Lesson 1", "Kiln Day"}


# -- the preview ---------------------------------------------------------------------------------


def test_the_preview_shows_the_history_with_its_pause_and_the_rest_of_the_timeline(
    harness: Harness,
) -> None:
    bo = harness.contact("bo@example.com")
    harness.store.apply_tag(bo, "Pottery Member")
    harness.advance(days=1)
    harness.store.remove_tag(bo, "Pottery Member")
    harness.advance(days=5)
    harness.store.apply_tag(bo, "Pottery Member")
    harness.drain()
    before = all_rows(harness.store)
    shown = preview(harness.store, harness.config, "pottery", bo)
    assert shown.lines() == [
        "drip pottery for bo@example.com: started 2026-01-01 12:00; as of 2026-01-07 12:00",
        "  2026-01-01 12:00  active     0s  started",
        "  2026-01-01 12:00  active     0s  unlocked lesson-1",
        "  2026-01-02 12:00  active     1d  paused: access lapsed",
        "  2026-01-07 12:00  active     1d  resumed: access is back",
        "  then, if access changes no further:",
        "  2026-01-08 12:00  active     2d  unlocked lesson-2 (starts lesson-2-email)",
        "                                   tag applied: Pottery Lesson 2",
        "  2026-01-10 12:00  active     4d  unlocked lesson-3",
        "                                   tag applied: Pottery Lesson 3",
        "  2026-01-20 00:00  active 13d12h  unlocked kiln-day",
        "                                   tag applied: Kiln Day",
        "  all 4 items released",
    ]
    assert all_rows(harness.store) == before, "a preview writes nothing"


def test_the_preview_of_a_member_whose_grant_ends_shows_the_pause_and_what_waits(
    harness: Harness,
) -> None:
    cy = harness.contact("cy@example.com")
    harness.store.grant(cy, "Pottery Member", "3d")
    before = all_rows(harness.store)
    lines = preview(harness.store, harness.config, "pottery", "cy@example.com").lines()
    assert lines == [
        "drip pottery for cy@example.com: not started; if it started now (2026-01-01 12:00)",
        "  2026-01-01 12:00  active     0s  started",
        "  2026-01-01 12:00  active     0s  unlocked lesson-1",
        "                                   tag applied: Pottery Lesson 1",
        "  2026-01-03 12:00  active     2d  unlocked lesson-2 (starts lesson-2-email)",
        "                                   tag applied: Pottery Lesson 2",
        "  2026-01-04 12:00  active     3d  paused: access lapsed",
        "  2 of 4 items released; waiting for access to return: lesson-3, kiln-day",
    ]
    assert all_rows(harness.store) == before


def test_the_preview_for_a_contact_without_access_starts_paused(harness: Harness) -> None:
    dan = harness.contact("dan@example.com")
    lines = preview(harness.store, harness.config, "pottery", dan).lines()
    assert lines[1:] == [
        "  2026-01-01 12:00  active     0s  started",
        "  2026-01-01 12:00  active     0s  unlocked lesson-1",
        "                                   tag applied: Pottery Lesson 1",
        "  1 of 4 items released; waiting for access to return: lesson-2, lesson-3, kiln-day",
    ]


def test_the_cli_lists_the_drip_and_previews_a_member_without_writing(
    harness: Harness, capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "site.toml").write_text(DRIP_SITE_TOML, encoding="utf-8")
    ann = harness.contact("ann@example.com")
    harness.store.apply_tag(ann, "Pottery Member")  # the worker has not started her drip yet
    before = all_rows(harness.store)
    code, out = cli(capsys, site, db_url, tmp_path, "automations", "check")
    assert code == 0
    assert (
        "pottery: tag_applied('Pottery Member') -> a drip of 4 item(s) while holding Pottery Member"
    ) in out
    code, out = cli(capsys, site, db_url, tmp_path, "automations", "preview", "pottery", "ann@example.com")  # fmt: skip
    assert code == 0
    assert out.startswith("drip pottery for ann@example.com: not started; if it started now (")
    assert "unlocked lesson-2 (starts lesson-2-email)" in out
    assert out.rstrip().endswith("all 4 items released")
    assert all_rows(harness.store) == before
