"""Loop guards (issue 16): rules that trigger each other in a cycle are refused by ``check``; at
run time a chain of runs caused by runs stops at ``[automations] max_chain``, the run fails with
the chain in its message and the admins get an email; a rule's own effects do not start it again
unless it says ``retrigger = true``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from shortcodes.automations import AutomationConfig, parse_automations, preview
from shortcodes.errors import ConfigError
from shortcodes.store import schema as db
from tests.support.automations import Harness
from tests.support.db import all_rows
from tests.support.paths import ROOT

HEAD = """\
[site]
admin_tag = "Site Admin"

[credits]
fields = ["_Credits"]

[tags]
"Site Admin" = "admin"
"Ping" = "loop"
"Pong" = "loop"
"Seen" = "loop"
"""

PING_PONG = """
[[rules]]
name = "ping"
trigger = "tag_applied('Ping')"
steps = [{ do = "remove_tag", tag = "Ping" }, { do = "apply_tag", tag = "Pong" }]

[[rules]]
name = "pong"
trigger = "tag_applied('Pong')"
steps = [
  { do = "send_email", template = "pong" },
  { do = "remove_tag", tag = "Pong" },
  { do = "apply_tag", tag = "Ping" },
]
"""


def test_check_refuses_two_rules_that_trigger_each_other_at_the_step_closing_the_loop(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_automations(HEAD + PING_PONG, "site.toml")
    exc = info.value
    assert exc.key == "rules.pong.steps[2]"
    assert (exc.line, exc.column) == (24, 3)
    assert exc.reason == (
        "these rules trigger each other in a loop that would never end: "
        "ping (apply_tag 'Pong') -> pong (apply_tag 'Ping') -> ping; "
        "change a trigger or a step so the chain stops"
    )
    # The check command prints it as FILE:LINE:COL and exits 1.
    site = tmp_path / "site"
    site.mkdir()
    (site / "site.toml").write_text(HEAD + PING_PONG, encoding="utf-8")
    (site / "pages").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "shortcodes", "check", "--site", str(site)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert f"{site / 'site.toml'}:24:3: error: rules.pong.steps[2]: these rules trigger" in (
        proc.stdout + proc.stderr
    )


def test_check_follows_balances_into_field_above_and_otherwise_steps() -> None:
    rules = """
[[rules]]
name = "top-up"
trigger = "field_above(_Credits, 100)"
conditions = "has_tag('Seen')"
steps = [{ do = "send_email", template = "rich" }]
otherwise = [{ do = "apply_tag", tag = "Seen" }]

[[rules]]
name = "seen"
trigger = "tag_applied('Seen')"
steps = [{ do = "credit", field = "_Credits", amount = 5 }]
"""
    with pytest.raises(ConfigError) as info:
        parse_automations(HEAD + rules, "site.toml")
    assert info.value.key == "rules.seen.steps[0]"
    assert "top-up (apply_tag 'Seen') -> seen (credit '_Credits') -> top-up" in info.value.reason


def test_a_rule_whose_effects_match_its_own_trigger_is_no_loop_and_a_chain_is_fine() -> None:
    rules = """
[[rules]]
name = "self"
trigger = "tag_removed('Ping')"
steps = [{ do = "apply_tag", tag = "Ping" }, { do = "remove_tag", tag = "Ping" }]

[[rules]]
name = "first"
trigger = "tag_applied('Ping')"
steps = [{ do = "apply_tag", tag = "Pong" }]

[[rules]]
name = "second"
trigger = "tag_applied('Pong')"
steps = [{ do = "apply_tag", tag = "Seen" }]
"""
    config = parse_automations(HEAD + rules, "site.toml")
    assert list(config.rules) == ["self", "first", "second"]


@pytest.mark.parametrize(("bad", "message"), [
    ('"yes"', "must be true or false, got 'yes'"),
    ("1", "must be true or false, got 1"),
])  # fmt: skip
def test_a_malformed_retrigger_names_its_line_and_column(bad: str, message: str) -> None:
    rules = f"""
[[rules]]
name = "self"
trigger = "tag_removed('Ping')"
retrigger = {bad}
steps = [{{ do = "apply_tag", tag = "Ping" }}]
"""
    with pytest.raises(ConfigError) as info:
        parse_automations(HEAD + rules, "site.toml")
    assert (info.value.key, info.value.line, info.value.reason) == (
        "rules.self.retrigger",
        16,
        message,
    )


def test_a_malformed_max_chain_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse_automations(HEAD + "\n[automations]\nmax_chain = 0\n", "site.toml")
    assert info.value.key == "automations.max_chain"
    assert (info.value.line, info.value.reason) == (
        14,
        "must be a whole number from 1 to 100, got 0",
    )


# -- at run time ---------------------------------------------------------------------------------

SELF_RETRIGGER = """
[automations]
max_chain = 4

[[rules]]
name = "ticker"
trigger = "field_above(_Credits, 0)"
steps = [{ do = "credit", field = "_Credits", amount = 1 }]

[[rules]]
name = "echo"
trigger = "tag_removed('Ping')"
retrigger = true
steps = [{ do = "apply_tag", tag = "Ping" }, { do = "remove_tag", tag = "Ping" }]

[[rules]]
name = "quiet"
trigger = "tag_removed('Pong')"
steps = [{ do = "apply_tag", tag = "Pong" }, { do = "remove_tag", tag = "Pong" }]
"""


@pytest.fixture
def loop_harness(harness: Harness) -> Harness:
    """The harness with the loop test site's rules."""
    config: AutomationConfig = parse_automations(HEAD + SELF_RETRIGGER, "site.toml")
    harness.store.create_tag("Site Admin")
    for name in ("Ping", "Pong", "Seen"):
        harness.store.create_tag(name)
    return Harness(harness.store, config, harness.clock, harness.instance)


def test_a_rule_is_not_started_again_by_its_own_effects(loop_harness: Harness) -> None:
    h = loop_harness
    ann = h.contact("ann@example.com")
    h.store.apply_tag(ann, "Pong")
    h.store.remove_tag(ann, "Pong")
    h.drain()
    runs = h.runs("quiet")
    assert [r.status for r in runs] == ["done"], "its own remove_tag did not start it again"


def test_a_chain_that_retriggers_itself_stops_at_max_chain_and_alerts_the_admins(
    loop_harness: Harness,
) -> None:
    h = loop_harness
    admin = h.contact("admin@example.com")
    h.store.apply_tag(admin, "Site Admin")
    ann = h.contact("ann@example.com")
    h.store.apply_tag(ann, "Ping")
    h.store.remove_tag(ann, "Ping")
    h.drain()
    runs = h.runs("echo")
    assert [r.status for r in runs] == ["done"] * 4 + ["failed"]
    assert [r.data["chain"] for r in runs[:2]] == [["echo"], ["echo", "echo"]]
    assert runs[-1].message == (
        "stopped by the loop guard: a chain of 5 runs, each caused by the one before, is longer "
        "than [automations] max_chain = 4: echo -> echo -> echo -> echo -> echo"
    )
    [alert] = h.emails("loop-stopped")
    assert alert["email"] == "admin@example.com"
    assert alert["chain"] == ["echo"] * 5
    assert alert["stopped_contact_id"] == ann
    h.drain()
    assert len(h.runs("echo")) == 5, "nothing runs after the guard stopped the chain"


def test_events_of_batched_steps_name_the_run_that_caused_them(loop_harness: Harness) -> None:
    h = loop_harness
    ann = h.contact("ann@example.com", credits=1)
    h.drain()
    [run] = h.runs("ticker")
    assert run.status == "done"
    assert h.store.balance(ann) == 2, "its own balance change did not start it again"
    e = db.events
    with h.store.engine.connect() as conn:
        data = (
            conn.execute(select(e.c.data).where(e.c.kind == "balance_changed").order_by(e.c.id))
            .scalars()
            .all()
        )
    assert [d.get("cause") for d in data] == [
        None,
        {"rule": "ticker", "run_id": run.id, "chain": ["ticker"]},
    ]


def test_the_preview_follows_the_chain_and_shows_where_the_loop_guard_stops_it(
    loop_harness: Harness,
) -> None:
    h = loop_harness
    admin = h.contact("admin@example.com")
    h.store.apply_tag(admin, "Site Admin")
    ann = h.contact("ann@example.com")
    before = all_rows(h.store)
    lines = preview(h.store, h.config, "echo", ann).lines()
    at = "       now  2026-01-01 12:00  "
    effect = " " * 30
    own = [f"{at}step 0 apply_tag", f"{effect}tag applied: Ping"]
    own += [f"{at}step 1 remove_tag", f"{effect}tag removed: Ping"]
    rerun = [line.replace(at, f"{at}rule echo: ") for line in own]
    started = [
        line
        for depth in (2, 3, 4)
        for line in (
            f"{at}rule echo: start",
            f"{effect}started by this chain: {' -> '.join(['echo'] * depth)}",
            *rerun,
        )
    ]
    assert lines == [
        "rule echo for ann@example.com: conditions hold",
        *own,
        *started,
        f"{at}rule echo: start [refused]",
        f"{effect}stopped by the loop guard: a chain of 5 runs, each caused by the one before, "
        "is longer than [automations] max_chain = 4: echo -> echo -> echo -> echo -> echo",
        f"{effect}email 'loop-stopped' to admin@example.com",
    ]
    assert all_rows(h.store) == before, "a preview writes nothing"


def test_the_preview_of_a_rule_shows_that_its_own_effects_do_not_start_it_again(
    loop_harness: Harness,
) -> None:
    h = loop_harness
    ann = h.contact("ann@example.com")
    lines = preview(h.store, h.config, "quiet", ann).lines()
    assert [line.strip() for line in lines[1:]] == [
        "now  2026-01-01 12:00  step 0 apply_tag",
        "tag applied: Pong",
        "now  2026-01-01 12:00  step 1 remove_tag",
        "tag removed: Pong",
    ]


def test_a_refusal_shows_once_though_steps_of_the_chain_run_after_it(
    loop_harness: Harness,
) -> None:
    h = loop_harness
    text = (HEAD + SELF_RETRIGGER).replace(
        '{ do = "remove_tag", tag = "Ping" }]',
        '{ do = "remove_tag", tag = "Ping" }, { do = "apply_tag", tag = "Seen" }]',
    )
    assert text != HEAD + SELF_RETRIGGER
    config = parse_automations(text, "site.toml")
    ann = h.contact("ann@example.com")
    lines = preview(h.store, config, "echo", ann).lines()
    assert sum("start [refused]" in line for line in lines) == 1
    assert sum("step 2 apply_tag" in line for line in lines) == 4, "each run's last step ran"
