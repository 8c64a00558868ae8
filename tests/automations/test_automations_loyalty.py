"""Loyalty complete: awards available now or after their own wait, removing points, referrals
made then approved, and the points figures, on SQLite and PostgreSQL with a moved clock.

The test site is the automations test site (``tests.support.automations.SITE_TOML``, whose
``[loyalty]`` keeps points pending 14 days and expires them after a year) plus the rules below;
the worker runs its real passes and every ledger verifies when a test ends.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from shortcodes.automations import loyalty, parse_automations
from shortcodes.automations.rules import AutomationConfig
from shortcodes.errors import ConfigError, InvalidInput
from shortcodes.membership import vocabulary as vocab
from shortcodes.store import Store
from shortcodes.store import schema as db
from shortcodes.store.session import Actor, Tx
from tests.automations.test_automations_cli_shortcodes import cli as run_cli
from tests.support.automations import SITE_TOML, Harness
from tests.support.clock import MovableClock

RULES = """
[[rules]]
name = "survey-bonus"
trigger = "webhook('survey')"
steps = [{ do = "award_points", points = 25, reason = "answered the survey", available_after = "3d" }]

[[rules]]
name = "welcome-points"
trigger = "webhook('welcome')"
steps = [{ do = "award_points", points = 40, reason = "welcome", available_after = "now" }]

[[rules]]
name = "order-returned"
trigger = "webhook('returned')"
steps = [{ do = "remove_points", points = 80, reason = "order returned" }]

[[rules]]
name = "referral-made"
trigger = "referral_made"
steps = [{ do = "award_points", points = 10, reason = "referred a friend", available_after = "now" }]
"""


@pytest.fixture
def loyal(store: Store, clock: MovableClock, tmp_path: Path) -> Harness:
    """The automations test site with the loyalty rules above."""
    config = parse_automations(SITE_TOML + RULES, "site.toml")
    return Harness(store, config, clock, tmp_path / "instance")


def points(h: Harness, contact_id: int, within: str = "30d") -> loyalty.PointsSummary:
    def read(tx: Tx) -> loyalty.PointsSummary:
        cfg = h.config.loyalty
        return loyalty.summary(tx.conn, cfg, contact_id, tx.now, vocab.duration(within))

    return h.store.run_in_transaction(read)


def hook(h: Harness, name: str, contact_id: int, n: int = 1) -> None:
    h.event("webhook", contact_id, {"name": name, "event_id": f"{name}-{contact_id}-{n}"})
    h.drain()


def entries(h: Harness, contact_id: int) -> list[tuple[int, str, str]]:
    e = db.ledger_entries
    query = (
        select(e.c.delta, e.c.reason, e.c.actor_id)
        .where((e.c.contact_id == contact_id) & (e.c.field == loyalty.FIELD))
        .order_by(e.c.id)
    )
    with h.store.engine.connect() as conn:
        return [(int(d), r, a) for d, r, a in conn.execute(query)]


def test_an_award_waits_its_own_3_days_not_the_sites_14(loyal: Harness) -> None:
    ann = loyal.contact("ann@example.com")
    hook(loyal, "survey", ann)
    assert (points(loyal, ann).pending, points(loyal, ann).available) == (25, 0)
    assert points(loyal, ann).next_available == datetime(2026, 1, 4, 12, 0)
    loyal.advance(days=2, hours=23)
    assert (points(loyal, ann).pending, points(loyal, ann).available) == (25, 0)
    loyal.advance(hours=1)
    assert (points(loyal, ann).pending, points(loyal, ann).available) == (0, 25)
    assert entries(loyal, ann)[-1][0] == 25


def test_an_award_available_now_is_spendable_at_once_with_its_reason_in_the_ledger(
    loyal: Harness,
) -> None:
    bo = loyal.contact("bo@example.com")
    hook(loyal, "welcome", bo)
    summary = points(loyal, bo)
    assert (summary.pending, summary.available, summary.lifetime) == (0, 40, 40)
    assert entries(loyal, bo) == [(40, "welcome", "welcome-points")]
    assert loyal.store.run_in_transaction(
        lambda tx: loyalty.spend(tx, loyal.config.loyalty, bo, 40, "spend")
    )


def step_results(h: Harness, rule: str) -> list[str]:
    s, r = db.auto_steps, db.auto_runs
    query = select(s.c.result).join(r, s.c.run_id == r.c.id).where(r.c.rule == rule)
    with h.store.engine.connect() as conn:
        return [str(x) for (x,) in conn.execute(query.order_by(s.c.id))]


def test_remove_points_cancels_pending_first_then_takes_available_never_below_zero(
    loyal: Harness,
) -> None:
    cy = loyal.contact("cy@example.com")
    cfg = loyal.config.loyalty
    loyal.store.run_in_transaction(
        lambda tx: loyalty.earn(tx, cfg, cy, 100, "now", "bonus", wait=vocab.NOW)
    )
    loyal.store.run_in_transaction(lambda tx: loyalty.earn(tx, cfg, cy, 50, "later", "order"))
    hook(loyal, "returned", cy, 1)  # the pending 50 go first, then 30 of the 100
    assert (points(loyal, cy).available, points(loyal, cy).pending) == (70, 0)
    hook(loyal, "returned", cy, 2)  # 80 asked, 70 there: 70 taken, none below zero
    assert (points(loyal, cy).available, points(loyal, cy).pending) == (0, 0)
    hook(loyal, "returned", cy, 3)  # nothing left: nothing written
    assert step_results(loyal, "order-returned") == [
        "removed 80 of 80 points (50 of them pending); 70 available",
        "removed 70 of 80 points (0 of them pending); 0 available",
        "removed 0 of 80 points (0 of them pending); 0 available",
    ]
    assert entries(loyal, cy) == [
        (100, "bonus", "loyalty"),
        (-30, "order returned", "order-returned"),
        (-70, "order returned", "order-returned"),
    ]
    loyal.advance(days=15)  # the cancelled award never starts
    assert entries(loyal, cy)[-1] == (-70, "order returned", "order-returned")
    assert points(loyal, cy).lifetime == 100, "a removal never lowers lifetime points"


def test_a_partly_cancelled_award_starts_with_what_is_left_and_counts_that_as_lifetime(
    loyal: Harness,
) -> None:
    dan = loyal.contact("dan@example.com")
    cfg = loyal.config.loyalty
    loyal.store.run_in_transaction(lambda tx: loyalty.earn(tx, cfg, dan, 50, "o", "order 9"))
    removal = loyal.store.run_in_transaction(
        lambda tx: loyalty.remove(tx, cfg, dan, 20, "r", "item 2 of order 9 returned")
    )
    assert removal == loyalty.Removal(20, 20, 20, 0)
    assert points(loyal, dan).pending == 30
    assert entries(loyal, dan) == [], "pending points are not in the balance: no entry yet"
    loyal.advance(days=14)
    assert (points(loyal, dan).available, points(loyal, dan).lifetime) == (30, 30)
    assert [delta for delta, _, _ in entries(loyal, dan)] == [30]


def test_remove_answers_how_many_it_took_and_replays_by_key(loyal: Harness) -> None:
    dee = loyal.contact("dee@example.com")
    cfg = loyal.config.loyalty
    loyal.store.run_in_transaction(lambda tx: loyalty.earn(tx, cfg, dee, 30, "a", wait="now"))

    def remove(key: str) -> loyalty.Removal:
        admin = Actor("admin", "test")
        return loyal.store.run_in_transaction(
            lambda tx: loyalty.remove(tx, cfg, dee, 50, key, "correction", admin)
        )

    assert remove("r1") == loyalty.Removal(50, 30, 0, 0)
    assert remove("r1") == loyalty.Removal(50, 30, 0, 0, replayed=True)
    assert remove("r2") == loyalty.Removal(50, 0, 0, 0)
    with pytest.raises(InvalidInput, match="removing points needs a reason"):
        loyal.store.run_in_transaction(lambda tx: loyalty.remove(tx, cfg, dee, 5, "r3", " "))
    with pytest.raises(InvalidInput, match="points must be a positive whole number, got 0"):
        loyal.store.run_in_transaction(lambda tx: loyalty.remove(tx, cfg, dee, 0, "r4", "x"))


def test_a_referral_is_made_then_approved_each_trigger_once_both_awarded(
    loyal: Harness,
) -> None:
    ivy = loyal.contact("ivy@example.com")
    jon = loyal.contact("jon@example.com")

    def run(what: str) -> bool:
        def work(tx: Tx) -> bool:
            if what == "make":
                return loyalty.make_referral(tx, ivy, "jon@example.com")
            return loyalty.approve_referral(tx, None, jon)  # the referrer is on record

        return loyal.store.run_in_transaction(work)

    assert (run("make"), run("make")) == (True, False)
    loyal.drain()
    assert points(loyal, ivy).available == 10  # referral-made: available at once
    assert (run("approve"), run("approve")) == (True, False)
    loyal.drain()
    assert (points(loyal, ivy).pending, points(loyal, jon).pending) == (50, 50)
    loyal.advance(days=14)
    assert (points(loyal, ivy).available, points(loyal, jon).available) == (60, 50)
    assert [len(loyal.runs(r)) for r in ("referral-made", "referral")] == [1, 1]
    runs = loyal.runs("referral")
    assert runs[0].contact_id == ivy
    assert runs[0].data["trigger"]["referred_id"] == jon


def test_approving_a_referral_never_made_makes_it_too(loyal: Harness) -> None:
    ivy = loyal.contact("ivy@example.com")
    jon = loyal.contact("jon@example.com")
    assert loyal.store.run_in_transaction(lambda tx: loyalty.approve_referral(tx, ivy, jon))
    loyal.drain()
    assert [len(loyal.runs(r)) for r in ("referral-made", "referral")] == [1, 1]


def test_referrals_refuse_a_second_referrer_a_self_referral_and_an_unknown_one(
    loyal: Harness,
) -> None:
    ivy = loyal.contact("ivy@example.com")
    jon = loyal.contact("jon@example.com")
    kit = loyal.contact("kit@example.com")
    loyal.store.run_in_transaction(lambda tx: loyalty.make_referral(tx, ivy, jon))
    cases = [
        (lambda tx: loyalty.make_referral(tx, kit, jon), f"contact {jon} was referred by another"),
        (
            lambda tx: loyalty.approve_referral(tx, kit, jon),
            f"contact {jon} was referred by another",
        ),
        (lambda tx: loyalty.make_referral(tx, kit, kit), "a contact cannot refer themselves"),
        (
            lambda tx: loyalty.approve_referral(tx, None, kit),
            "no referral of this contact was made",
        ),
    ]
    for work, message in cases:
        with pytest.raises(InvalidInput, match=message):
            loyal.store.run_in_transaction(work)
    t = db.loyalty_referrals
    with loyal.store.engine.connect() as conn:
        rows = conn.execute(select(t.c.referred_id, t.c.referrer_id, t.c.approved_at)).all()
    assert [tuple(r) for r in rows] == [(jon, ivy, None)]


def test_the_summary_counts_points_expiring_within_the_window_asked(loyal: Harness) -> None:
    eve = loyal.contact("eve@example.com")
    cfg = loyal.config.loyalty
    loyal.store.run_in_transaction(lambda tx: loyalty.earn(tx, cfg, eve, 70, "a", wait="now"))
    loyal.advance(days=200)
    loyal.store.run_in_transaction(lambda tx: loyalty.earn(tx, cfg, eve, 30, "b", wait="now"))
    loyal.advance(days=150)  # the first award expires in 15 days, the second in 215
    assert points(loyal, eve, "14d").expiring == 0
    assert points(loyal, eve, "15d").expiring == 70
    assert points(loyal, eve, "30d").expiring == 70
    assert points(loyal, eve, "1y").expiring == 100
    loyal.advance(days=15)
    assert (points(loyal, eve).available, points(loyal, eve, "1y").expiring) == (30, 30)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            '{ do = "award_points", points = 5, available_after = "soon" }',
            "write 'now' or a duration like '14d'; got 'soon'",
        ),
        (
            '{ do = "award_points", points = 5, available_after = "0d" }',
            "write 'now' or a duration like '14d'; got '0d'",
        ),
        (
            '{ do = "remove_points", points = 5 }',
            "step 'remove_points' needs the argument 'reason'",
        ),
        (
            '{ do = "remove_points", points = 0, reason = "x" }',
            "an amount is a whole number from 1 to 1000000000000, got 0",
        ),
    ],
)
def test_loyalty_steps_are_checked_when_the_site_loads(step: str, message: str) -> None:
    text = f'[[rules]]\nname = "r"\ntrigger = "login"\nsteps = [{step}]\n'
    with pytest.raises(ConfigError) as info:
        parse_automations(text)
    assert message in info.value.reason


def test_loyalty_available_after_may_be_now_for_the_whole_site() -> None:
    config: AutomationConfig = parse_automations('[loyalty]\navailable_after = "now"\n')
    assert config.loyalty.available_after == "now"
    with pytest.raises(ConfigError) as info:
        parse_automations('[loyalty]\navailable_after = "later"\n')
    assert info.value.key == "loyalty.available_after"


def test_points_cli_awards_removes_and_shows_the_figures(
    loyal: Harness,
    capsys: pytest.CaptureFixture[str],
    site_dir: Path,
    db_url: str,
    tmp_path: Path,
) -> None:
    fay = loyal.contact("fay@example.com")

    def cli(*args: str) -> tuple[int, str]:
        return run_cli(capsys, site_dir, db_url, tmp_path, *args)

    award = ("points", "award", "fay@example.com", "120", "--reason", "gift")
    code, out = cli(*award, "--available-after", "now", "--key", "k1")
    assert code == 0, out
    assert out.splitlines() == [
        "awarded",
        f"contact {fay}: stage Bronze, 120 lifetime points",
        "available: 120",
        "pending: 0",
        "expiring within 30d: 0",
    ]
    code, out = cli(*award, "--available-after", "now", "--key", "k1")
    assert out.splitlines()[0] == "already awarded earlier with this key"
    code, out = cli("points", "show", str(fay), "--within", "400d")
    assert out.splitlines()[-1].startswith("expiring within 400d: 120 (next ")
    code, out = cli("points", "award", "fay@example.com", "30", "--reason", "order 7")
    assert out.splitlines()[3].startswith("pending: 30 (next ")
    code, out = cli("points", "remove", "fay@example.com", "200", "--reason", "fraud")
    assert out.splitlines()[:3] == [
        "removed 150 of 200 (30 of them pending)",
        f"contact {fay}: stage Bronze, 120 lifetime points",
        "available: 0",
    ]
    assert entries(loyal, fay)[-1] == (-120, "fraud", "cli")
    assert out.splitlines()[3] == "pending: 0"
    code, out = cli("points", "show", "nobody@example.com")
    assert (code, out.strip()) == (1, "error: no contact 'nobody@example.com'")
    with pytest.raises(SystemExit):
        cli("points", "award", "fay@example.com", "-3", "--reason", "x")
    with pytest.raises(SystemExit):
        cli("points", "remove", "fay@example.com", "3")  # --reason is required


def test_the_preview_of_a_removal_shows_the_points_it_would_leave_and_writes_nothing(
    loyal: Harness,
) -> None:
    from shortcodes.automations import preview

    gil = loyal.contact("gil@example.com")
    cfg = loyal.config.loyalty
    loyal.store.run_in_transaction(lambda tx: loyalty.earn(tx, cfg, gil, 100, "a", wait="now"))
    loyal.store.run_in_transaction(lambda tx: loyalty.earn(tx, cfg, gil, 50, "b", "order"))
    shown = [
        line.strip() for line in preview(loyal.store, loyal.config, "order-returned", gil).lines()
    ]
    assert shown[2:] == [
        "ledger entry: Points -30 = 70",
        "points: 70 available, 0 pending, 100 lifetime",
    ]
    assert (points(loyal, gil).available, points(loyal, gil).pending) == (100, 50)
    assert entries(loyal, gil) == [(100, "loyalty points", "loyalty")]
