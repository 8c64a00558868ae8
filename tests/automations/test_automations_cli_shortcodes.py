"""The automations CLI (check, preview, billing-run, outbox) and the loyalty shortcodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from shortcodes import Environment
from shortcodes.automations import loyalty
from shortcodes.automations.shortcodes import register_loyalty_shortcodes, with_points
from shortcodes.cli import main
from shortcodes.context import Context
from tests.support.automations import Harness


def cli(
    capsys: pytest.CaptureFixture[str], site_dir: Path, db_url: str, tmp: Path, *args: str
) -> tuple[int, str]:
    common = [
        "--site",
        str(site_dir / "site.toml"),
        "--database-url",
        db_url,
        "--instance",
        str(tmp),
    ]
    code = main([*args, *common])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_check_lists_every_rule(
    capsys: pytest.CaptureFixture[str], site_dir: Path, db_url: str, tmp_path: Path
) -> None:
    code, out = cli(capsys, site_dir, db_url, tmp_path, "automations", "check")
    assert code == 0
    assert "drip-course: tag_applied('Owns Drip Course') -> 9 step(s)" in out
    assert "rule(s) ok" in out


def test_preview_command_prints_the_timeline_without_writing(
    harness: Harness,
    capsys: pytest.CaptureFixture[str],
    site_dir: Path,
    db_url: str,
    tmp_path: Path,
) -> None:
    harness.contact("ann@example.com", credits=3)
    events = harness.count(harness_events())
    code, out = cli(
        capsys,
        site_dir,
        db_url,
        tmp_path,
        "automations",
        "preview",
        "drip-course",
        "ann@example.com",
    )
    assert code == 0
    assert "rule drip-course for ann@example.com: conditions hold" in out
    assert out.count("tag applied: Drip Day") == 5
    assert "+4d" in out
    assert harness.count(harness_events()) == events
    code, out = cli(capsys, site_dir, db_url, tmp_path, "automations", "preview", "nope", "--all")
    assert code == 1
    assert "no rule 'nope'" in out


def test_billing_run_bills_each_subscriber_once_per_period(
    harness: Harness,
    capsys: pytest.CaptureFixture[str],
    site_dir: Path,
    db_url: str,
    tmp_path: Path,
) -> None:
    subs = [harness.contact(f"s{n}@example.com") for n in range(3)]
    other = harness.contact("other@example.com")
    for who in subs:
        harness.store.apply_tag(who, "Subscriber")
    args = (
        "automations",
        "billing-run",
        "--product",
        "monthly",
        "--tag",
        "Subscriber",
        "--period",
        "2026-01",
    )
    code, out = cli(capsys, site_dir, db_url, tmp_path, *args)
    assert code == 0, out
    assert "3 subscribers: 3 billed, 0 already billed for 2026-01" in out
    # Not a terminal here (the progress bar is off): the count is still the real one.
    assert out.rstrip().endswith("rules done: 6 steps")
    code, out = cli(capsys, site_dir, db_url, tmp_path, *args)
    assert "3 subscribers: 0 billed, 3 already billed" in out
    assert [harness.store.balance(s) for s in subs] == [50, 50, 50]
    assert harness.store.balance(other) == 0
    assert len(harness.emails("monthly-credits")) == 3
    code, out = cli(capsys, site_dir, db_url, tmp_path, *args[:-1], "2026-02")
    assert [harness.store.balance(s) for s in subs] == [100, 100, 100]


def test_outbox_redeliver_and_log_commands(
    harness: Harness,
    capsys: pytest.CaptureFixture[str],
    site_dir: Path,
    db_url: str,
    tmp_path: Path,
) -> None:
    ann = harness.contact("ann@example.com")
    harness.event("payment_succeeded", ann, {"product": "monthly", "payment_id": "p"})
    harness.drain()
    (row,) = harness.outbox("email")
    code, out = cli(capsys, site_dir, db_url, tmp_path, "outbox", "redeliver", str(row.id))
    assert code == 0
    assert f"message {row.id} (sent) queued for delivery again" in out
    code, out = cli(capsys, site_dir, db_url, tmp_path, "outbox", "log", str(row.id))
    assert "attempt 1  ok" in out
    code, out = cli(capsys, site_dir, db_url, tmp_path, "outbox", "redeliver", "999999")
    assert code == 1
    assert "no outbox message 999999" in out


def test_loyalty_shortcodes_show_pending_available_expiring_and_stage(harness: Harness) -> None:
    kim = harness.contact("kim@example.com")
    cfg = harness.config.loyalty
    harness.store.run_in_transaction(lambda tx: loyalty.earn(tx, cfg, kim, 120, "a"))
    harness.clock.advance(days=20)
    harness.store.run_in_transaction(lambda tx: loyalty.earn(tx, cfg, kim, 100, "b"))
    harness.drain()  # the first lot is available, the second pending
    env = Environment()
    register_loyalty_shortcodes(env)
    page = '[loyalty_points] [loyalty_points kind="pending"] [loyalty_points kind="expiring"] [loyalty_stage]'

    def render() -> str:
        contact = with_points(harness.store, cfg, harness.store.get_contact(kim))
        return str(env.render(page, Context(contact=contact)))

    assert render() == "120 100 0 Bronze"
    harness.advance(days=330)  # the first lot expires within 30 days
    assert render() == "220 0 120 Silver"
    assert str(env.render(page, Context())) == "   "


def harness_events():  # type: ignore[no-untyped-def]
    from shortcodes.store import schema as db

    return db.events


@pytest.mark.parametrize("extra", [(), ("ann@example.com", "--all")])
def test_preview_names_one_contact_or_all_not_neither_nor_both(
    harness: Harness,
    capsys: pytest.CaptureFixture[str],
    site_dir: Path,
    db_url: str,
    tmp_path: Path,
    extra: tuple[str, ...],
) -> None:
    harness.contact("ann@example.com")
    code, out = cli(capsys, site_dir, db_url, tmp_path, "automations", "preview", "drip-course",
                    *extra)  # fmt: skip
    assert code == 1
    assert "name one CONTACT, or pass --all (not both)" in out
