"""A malformed drip is refused by ``check`` with ``FILE:LINE:COL: error: KEY: MESSAGE``, like every
other mistake in site.toml (and the host refuses to start with it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shortcodes.automations import parse_automations
from shortcodes.cli import main

HEAD = '[tags]\n"Member" = "membership"\n"Lesson" = "drip"\n'
#: A drip rule whose [rules.drip] table starts on line 8; a case adds keys and items.
RULE = '[[rules]]\nname = "course"\ntrigger = "tag_applied(Member)"\n\n[rules.drip]\n'
ITEM = '[[rules.drip.items]]\nname = "one"\n'
MAIL = 'steps = [{ do = "send_email", template = "x" }]\n'

BAD = [
    pytest.param(
        RULE + 'access = ["Membr"]\n' + ITEM,
        "9:11: error: rules.course.drip.access[0]: unknown tag 'Membr' (not declared in [tags])",
        id="unknown access tag",
    ),
    pytest.param(
        RULE + ITEM + 'tag = "Lessons"\n',
        "11:1: error: rules.course.drip.items.one.tag: unknown tag 'Lessons' (not declared in "
        "[tags])",
        id="unknown item tag",
    ),
    pytest.param(
        RULE + ITEM + 'after = "2x"\n',
        "11:1: error: rules.course.drip.items.one.after: a duration is a positive whole number "
        "and a unit s, m (minutes), h, d, w, mo (months) or y, like '14d' or '4mo'; got '2x'",
        id="bad duration",
    ),
    pytest.param(
        RULE + ITEM + 'after = "1mo"\n',
        "11:1: error: rules.course.drip.items.one.after: active time has no calendar: write "
        "'1mo' in days or weeks (like '30d'), not months or years",
        id="months of active time",
    ),
    pytest.param(
        RULE + ITEM + 'on = "2026-02-30"\n',
        "11:1: error: rules.course.drip.items.one.on: a date is written 2026-03-01 or "
        "2026-03-01T09:00:00Z; got '2026-02-30'",
        id="a date that does not exist",
    ),
    pytest.param(
        RULE + ITEM + "on = 2026-02-30\n",
        "11:6: error: not valid TOML: Invalid date or datetime",
        id="a TOML date that does not exist",
    ),
    pytest.param(
        RULE + ITEM + 'after = "2d"\non = 2026-03-01\n',
        "12:1: error: rules.course.drip.items.one.on: an item is released 'after' active time "
        "or 'on' a date, not both",
        id="after and on",
    ),
    pytest.param(
        RULE + ITEM + '\n[[rules]]\nname = "mail"\ntrigger = "unlocked(two)"\n' + MAIL,
        "14:1: error: rules.mail.trigger: unlocked('two') names no drip item (items: one)",
        id="unlocked names an unknown item",
    ),
    pytest.param(
        RULE + ITEM + ITEM.replace("one", "One") + 'after = "1d"\n',
        "12:1: error: rules.course.drip.items[1].name: another item of this drip is named 'One'",
        id="two items with one name",
    ),
    pytest.param(
        RULE
        + ITEM
        + '\n[[rules]]\nname = "other"\ntrigger = "login"\n'
        + 'drip = { access = ["Member"], items = [{ name = "one" }] }\n',
        "15:42: error: rules.other.drip.items[0].name: the drip of rule 'course' has an item "
        "named 'one' too; unlocked(item) must name one item",
        id="an item name in two drips",
    ),
    pytest.param(
        RULE + ITEM + 'after = "3d"\n' + ITEM.replace("one", "two") + 'after = "1d"\n',
        "14:1: error: rules.course.drip.items[1].after: items are listed in the order they "
        "come: 'two' (after 1d) comes before 'one' (after 3d)",
        id="items out of order",
    ),
    pytest.param(
        RULE.replace("tag_applied(Member)", "login") + ITEM,
        "8:1: error: rules.course.drip.access: missing: a drip needs access tags, like access = "
        '["Member"] (only a tag_applied trigger gives a default)',
        id="no access without a tag trigger",
    ),
    pytest.param(
        RULE + 'access = ["Member"]\n',
        "8:1: error: rules.course.drip.items: missing: a drip needs items, like "
        "[[rules.drip.items]]",
        id="no items",
    ),
    pytest.param(
        RULE + ITEM + 'tags = "Lesson"\n',
        "11:1: error: rules.course.drip.items[0].tags: unknown key 'tags' (expected one of: "
        "after, name, on, steps, tag)",
        id="unknown item key",
    ),
    pytest.param(
        RULE + '[[rules.drip.items]]\nafter = "1d"\n',
        "9:1: error: rules.course.drip.items[0].name: missing: every drip item needs a name, "
        'like "week-1"',
        id="item without a name",
    ),
    pytest.param(
        RULE + ITEM + 'steps = [{ do = "redirect", url = "/x" }]\n',
        "11:12: error: rules.course.drip.items.one.steps[0].do: 'redirect' cannot be a step of "
        "a rule: it needs a visitor, and rules run in the background",
        id="an actionset-only step",
    ),
    pytest.param(
        '[[rules]]\nname = "course"\ntrigger = "login"\n',
        "4:1: error: rules.course.steps: missing: every rule needs steps (or a drip)",
        id="neither steps nor a drip",
    ),
]


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_check_refuses_a_malformed_drip_with_file_line_column_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    (tmp_path / "pages").mkdir()
    (tmp_path / "site.toml").write_text(HEAD + text, encoding="utf-8")
    assert main(["check", "--site", str(tmp_path)]) == 1
    assert capsys.readouterr() == ("", f"{tmp_path / 'site.toml'}:{problem}\n")


def test_a_drip_written_inline_loads_like_the_tables_and_defaults_its_access() -> None:
    config = parse_automations(
        HEAD
        + '[[rules]]\nname = "course"\ntrigger = "tag_applied(Member)"\n'
        + 'drip.items = [{ name = "one", tag = "Lesson" }, { name = "two", after = "36h" },'
        + ' { name = "party", on = 2026-03-01T18:00:00+02:00 }]\n',
        "site.toml",
    )
    drip = config.rules["course"].drip
    assert drip is not None
    assert drip.access == ("Member",)
    assert [(i.name, i.describe()) for i in drip.items] == [
        ("one", "after 0s of access"),
        ("two", "after 1d12h of access"),
        ("party", "on 2026-03-01 16:00"),
    ]
    assert [s.to_json() for s in drip.items[0].steps] == [{"do": "apply_tag", "tag": "Lesson"}]
