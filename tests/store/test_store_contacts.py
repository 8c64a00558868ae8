"""Contacts, tags, grants, fields and events on both databases."""

from __future__ import annotations

import pytest

from shortcodes.context import Contact
from shortcodes.errors import (
    DuplicateContact,
    InvalidInput,
    UnknownContact,
    UnknownField,
    UnknownTag,
)
from shortcodes.store import Store
from tests.support.clock import MovableClock
from tests.support.db import buyer, dump


def test_get_contact_snapshot_carries_tags_fields_and_balances(store: Store) -> None:
    ann = store.add_contact(" Ann@Example.com ", "Ann", fields={"FirstName": "Ann"})
    store.credit(ann, 60)
    store.apply_tag(ann, "gold")
    contact = store.get_contact("ann@example.com")
    assert isinstance(contact, Contact)
    assert contact.email == "ann@example.com"
    assert contact.has_tag("Gold")
    assert contact.has_tag(store.get_tag("GOLD").id)
    assert contact.field("firstname") == "Ann"
    assert contact.balance("_Credits") == 60
    assert contact.balance("_Points") == 0
    assert store.get_contact(ann) == contact


def test_duplicate_emails_are_refused_case_insensitively(store: Store) -> None:
    store.add_contact("ann@example.com")
    before = dump(store)
    with pytest.raises(DuplicateContact) as info:
        store.add_contact("ANN@example.com")
    assert str(info.value) == "a contact with email ann@example.com already exists"
    assert dump(store) == before


@pytest.mark.parametrize("email", ["", "ann", "ann@", "@x", "a b@x.com", "a@b@c"])
def test_malformed_emails_are_refused(store: Store, email: str) -> None:
    with pytest.raises(InvalidInput, match="email"):
        store.add_contact(email)


def test_unknown_contact_has_a_clear_error(store: Store) -> None:
    with pytest.raises(UnknownContact, match=r"nobody@example\.com"):
        store.get_contact("nobody@example.com")


def test_tags_are_unique_case_insensitively(store: Store) -> None:
    first = store.create_tag("VIP Club", "membership")
    assert store.create_tag("vip club") == first
    assert store.get_tag("vip CLUB") == first


LENGTH = "a tag name is 1 to 200 printable characters, got {!r}"
SHAPE = "a tag name cannot contain a comma, start with '-' or be a number: {!r}"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", LENGTH.format("")),
        ("  ", LENGTH.format("  ")),
        ("a,b", SHAPE.format("a,b")),
        ("123", SHAPE.format("123")),
        ("-Gold", SHAPE.format("-Gold")),
        ("x" * 201, LENGTH.format("x" * 201)),
    ],
)
def test_unusable_tag_names_are_refused(store: Store, name: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        store.create_tag(name)
    assert str(info.value) == message


def test_unknown_tags_are_refused_and_nothing_is_written(store: Store) -> None:
    ann = buyer(store)
    before = dump(store)
    with pytest.raises(UnknownTag, match="Platinum"):
        store.apply_tag(ann, "Platinum")
    with pytest.raises(UnknownTag) as info:
        store.remove_tag(ann, 9999)
    assert str(info.value) == "no tag 9999"
    assert dump(store) == before


def test_apply_and_remove_report_whether_anything_changed(store: Store) -> None:
    ann = buyer(store)
    assert store.apply_tag(ann, "Gold") is True
    assert store.apply_tag(ann, "Gold") is False
    assert store.remove_tag(ann, "Gold") is True
    assert store.remove_tag(ann, "Gold") is False
    kinds = [e.kind for e in store.events_after(0)]
    assert kinds == ["contact_created", "tag_applied", "tag_removed"]


def test_a_grant_is_held_until_it_expires(store: Store, clock: MovableClock) -> None:
    ann = buyer(store)
    assert store.grant(ann, "Trial", "14d")
    clock.advance(days=13, hours=23)
    assert store.get_contact(ann).has_tag("Trial")
    clock.advance(hours=1)
    assert not store.get_contact(ann).has_tag("Trial")
    assert store.remove_tag(ann, "Trial") is False  # an expired grant is not held


def test_a_grant_extends_but_never_shortens_and_never_limits_a_permanent_tag(
    store: Store, clock: MovableClock
) -> None:
    ann = buyer(store)
    store.grant(ann, "Trial", "14d")
    assert store.grant(ann, "Trial", "1d") is False
    clock.advance(days=10)
    store.grant(ann, "Trial", "10d")  # now ends on day 20
    clock.advance(days=9)
    assert store.get_contact(ann).has_tag("Trial")
    store.apply_tag(ann, "Gold")
    store.grant(ann, "Gold", "1d")
    clock.advance(days=30)
    contact = store.get_contact(ann)
    assert contact.has_tag("Gold")
    assert not contact.has_tag("Trial")


def test_an_expired_grant_can_be_granted_again(store: Store, clock: MovableClock) -> None:
    ann = buyer(store)
    store.grant(ann, "Trial", "1h")
    clock.advance(hours=2)
    assert store.grant(ann, "Trial", "1h") is True
    assert store.get_contact(ann).has_tag("Trial")


def test_a_grant_lasts_calendar_months_as_rules_and_actionsets_write_it(
    store: Store, clock: MovableClock
) -> None:
    # Regression: "1mo" was valid in a rule and refused by the store (two duration readers).
    ann = buyer(store)
    assert store.grant(ann, "Trial", "1mo") is True
    clock.advance(days=30)
    assert store.get_contact(ann).has_tag("Trial")
    clock.advance(days=2)
    assert not store.get_contact(ann).has_tag("Trial")


@pytest.mark.parametrize("duration", ["0d", "-1d", "14", "11y", "soon", "\u0661d"])
def test_bad_grant_durations_are_refused(store: Store, duration: str) -> None:
    ann = buyer(store)
    with pytest.raises(InvalidInput, match="duration"):
        store.grant(ann, "Trial", duration)


def test_set_field_replaces_any_spelling_of_the_name(store: Store) -> None:
    ann = store.add_contact("ann@example.com", fields={"FirstName": "Ann"})
    store.set_field(ann, "firstname", "Anna")
    assert store.get_contact(ann).fields["firstname"] == "Anna"
    assert "FirstName" not in store.get_contact(ann).fields


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("_Credits", "credit balance"),
        ("_credits", "credit balance"),
        ("Email", "part of the contact"),
        ("bad name", "not a field name"),
        ("9lives", "not a field name"),
    ],
)
def test_set_field_refuses_balances_builtins_and_bad_names(
    store: Store, name: str, match: str
) -> None:
    ann = buyer(store, credits=5)
    before = dump(store)
    with pytest.raises(UnknownField, match=match):
        store.set_field(ann, name, "1000")
    assert dump(store) == before


def test_set_field_refuses_non_scalar_values(store: Store) -> None:
    ann = buyer(store)
    with pytest.raises(InvalidInput) as info:
        store.set_field(ann, "Note", ["a", "list"])
    assert str(info.value) == "field 'Note' needs a text, number or boolean value, got list"


def test_check_password_accepts_only_the_right_password(store: Store) -> None:
    store.add_contact("ann@example.com", password="correct horse")
    assert store.check_password("ANN@example.com", "correct horse") is not None
    assert store.check_password("ann@example.com", "wrong") is None
    assert store.check_password("nobody@example.com", "correct horse") is None
