"""The membership builtins against their spec cases in tests/fixtures/memb_*.txt.

Each family file (memb_if, memb_tags, memb_contact, memb_credits) holds pages and the exact
output expected for the contacts of memb_people.txt. Modes (the part before ':' in a title):
``table`` renders each input line on its own for an anonymous visitor; ``each`` renders the page
for every contact (``name: output`` lines); ``NAME`` renders for one contact with notices shown
(preview); ``NAME visitor`` renders with notices hidden, as visitors see the page.
"""

from __future__ import annotations

import json

import pytest

from shortcodes import Contact, Context, Environment, Tag
from tests.support.fixture_loader import Case, load_cases


def load_people() -> dict[str, Contact | None]:
    """The contacts of memb_people.txt by name (None is an anonymous visitor)."""
    people: dict[str, Contact | None] = {}
    for case in load_cases("memb_people.txt"):
        data = json.loads(case.input)
        people[case.title] = (
            None
            if data is None
            else Contact(
                data["id"], data["email"], [Tag(i, n) for i, n in data["tags"]], data["fields"]
            )
        )
    return people


PEOPLE = load_people()
FAMILIES = ("memb_if.txt", "memb_tags.txt", "memb_contact.txt", "memb_credits.txt")
CASES = [case for name in FAMILIES for case in load_cases(name)]


@pytest.fixture(scope="module")
def env() -> Environment:
    """One environment with the builtins (compiled pages do not depend on the visitor)."""
    return Environment()


def test_people_and_cases_load() -> None:
    """Guards the loaders: a broken fixture file must not silently yield no cases."""
    assert sorted(PEOPLE) == ["ann", "anon", "bob", "cara", "dan"]
    assert len(CASES) >= 70


def _expect_each(case: Case) -> dict[str, str]:
    expected: dict[str, str] = {}
    for line in case.expected.split("\n"):
        name, _, out = line.partition(":")
        expected[name] = out[1:] if out.startswith(" ") else out
    assert sorted(expected) == sorted(PEOPLE), f"{case.where}: list every contact once"
    return expected


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_membership_spec_case(env: Environment, case: Case) -> None:
    """The page renders exactly as the fixture says for the contact(s) its mode names."""
    if case.mode == "table":
        inputs, outputs = case.input.split("\n"), case.expected.split("\n")
        assert len(inputs) == len(outputs), f"{case.where}: one expected line per input line"
        got = [str(env.render(line)) for line in inputs]
        for line, want, have in zip(inputs, outputs, got, strict=True):
            assert have == want, f"{line} -> {have!r}, expected {want!r}"
    elif case.mode == "each":
        template = env.compile(case.input)
        got = {name: str(template.render(Context(contact=c))) for name, c in PEOPLE.items()}
        assert got == _expect_each(case)
    else:
        who, _, visitor = case.mode.partition(" ")
        assert visitor in ("", "visitor"), f"{case.where}: unknown mode {case.mode!r}"
        ctx = Context(contact=PEOPLE[who], show_errors=not visitor)
        assert str(env.render(case.input, ctx)) == case.expected
