"""Drip sequences: the ``drip`` of a rule in site.toml, and the arithmetic of active time.

A drip rule releases items to a member one after another. Its trigger *starts* the member's drip
(once: a second trigger never starts it over); each item is released after an amount of **active
time** (time during which the member holds one of the drip's ``access`` tags: the count pauses
while access has lapsed and resumes when it returns) or on a calendar date (released then, or when
access returns after it)::

    [[rules]]
    name = "pottery-course"
    trigger = "tag_applied('Pottery Member')"

    [rules.drip]
    access = ["Pottery Member"]             # default: the tag of a tag_applied trigger

    [[rules.drip.items]]
    name = "lesson-1"                       # released when the drip starts
    tag = "Pottery Lesson 1"

    [[rules.drip.items]]
    name = "lesson-2"
    after = "2d"                            # two days of active time after the start
    tag = "Pottery Lesson 2"

    [[rules.drip.items]]
    name = "kiln-day"
    on = 2026-03-01                         # a calendar date (UTC), or a datetime
    steps = [{ do = "apply_tag", tag = "Kiln Day" }]

Each release raises an ``unlocked`` event (the ``unlocked(item)`` trigger) and runs the item's
steps (``tag`` is short for one ``apply_tag``) as a run of the rule. The store side (per-member
state, the worker's pass, pauses) is :mod:`shortcodes.automations.release`; this module holds the
configuration and :class:`Clock`, the pure state machine both the worker and the preview use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shortcodes.membership import vocabulary as vocab
from shortcodes.membership.keys import Key, Keys
from shortcodes.membership.source import Node
from shortcodes.membership.steps import Step, Terms, load_step

DRIP_KEYS = Keys(
    "rules.drip",
    "A drip sequence (instead of, or beside, a rule's `steps`): the rule's trigger starts a "
    "member's drip once; items are released by **active** time, which counts only while the "
    "member holds an `access` tag (it pauses on lapse and resumes where it stopped), or on "
    "calendar dates. Each release raises `unlocked(item)` and runs the item's steps.",
    {
        "access": Key(
            "list of tags",
            "the tags that make time count (holding any one of them); a lapse pauses the drip",
            "the tag of a `tag_applied` trigger",
            '["All Access"]',
        ),
        "items": Key(
            "array of tables `[[rules.drip.items]]`",
            "what is released, in order (table below)",
            "",
            "",
            required=True,
        ),
    },
)
DRIP_ITEM_KEYS = Keys(
    "[[rules.drip.items]]",
    "One item of a drip: released `after` an amount of active time since the drip started, "
    "or `on` a date (neither: when the drip starts). Items with `after` are listed in the "
    "order they are released.",
    {
        "name": Key(
            "name",
            "the item's name, unique across the site's drips (`unlocked('week-1')` names it)",
            "",
            '"week-1"',
            required=True,
        ),
        "after": Key(
            "duration (s, m, h, d, w)",
            "active time since the drip started; months and years are refused (active time "
            "has no calendar)",
            "released at the start",
            '"7d"',
        ),
        "on": Key(
            "date or datetime",
            "a calendar date (UTC midnight) or datetime: released then, if access holds, or "
            "when access returns after it",
            "",
            "",
        ),
        "tag": Key("tag", "a tag to apply (short for one `apply_tag` step)", "", '"Owns Course A"'),
        "steps": Key(
            "list of steps",
            "what else the release does (rule steps, e.g. `send_email`)",
            "[]",
            "",
        ),
    },
)


@dataclass(frozen=True, slots=True)
class DripItem:
    """One item: when it is released (``after`` active time, or ``on`` a date) and its steps."""

    name: str
    steps: tuple[Step, ...]
    after: timedelta = timedelta(0)
    #: Naive UTC, like every time the store keeps; None for an item released by active time.
    on: datetime | None = None

    def describe(self) -> str:
        """When the item comes: ``after 7d of access`` or ``on 2026-03-01 00:00``."""
        if self.on is not None:
            return f"on {self.on:%Y-%m-%d %H:%M}"
        return f"after {active_text(self.after)} of access"


@dataclass(frozen=True, slots=True)
class Drip:
    """A rule's drip: the access tags and the items."""

    access: tuple[str, ...]
    items: tuple[DripItem, ...]

    def item(self, name: str) -> DripItem:
        """The item named ``name``."""
        return next(i for i in self.items if i.name == name)


def active_text(span: timedelta) -> str:
    """An active time as people read it: ``2d``, ``13d12h``, ``90s`` (``0s`` for none)."""
    seconds = int(span.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


# -- loading ------------------------------------------------------------------------------------


def load_drip(node: Node, terms: Terms, trigger_tag: str | None) -> Drip:
    """Validate a rule's ``drip`` table (``trigger_tag``: the tag of a ``tag_applied`` trigger,
    the default access)."""
    node.table(DRIP_KEYS, what="a table with access and items")
    if "access" in node:
        access = _access(node.child("access"), terms)
    elif trigger_tag is not None:
        access = (trigger_tag,)
    else:
        raise node.fail(
            'missing: a drip needs access tags, like access = ["Member"] (only a '
            "tag_applied trigger gives a default)",
            "access",
        )
    if "items" not in node:
        raise node.fail("missing: a drip needs items, like [[rules.drip.items]]", "items")
    items = tuple(
        _item(child, terms)
        for child in node.child("items").elements("a list of items (tables [[rules.drip.items]])")
    )
    if not items:
        raise node.fail("must list at least one item", "items")
    _check_items(node.child("items"), items)
    return Drip(access, items)


def _access(node: Node, terms: Terms) -> tuple[str, ...]:
    raw = node.value
    if isinstance(raw, str):
        raw = [raw]
        node = Node(node.source, node.path, raw, node.shown)
    tags = tuple(
        child.check(terms.tag) for child in node.elements('a list of tags like ["Member"]')
    )
    if not tags:
        raise node.fail('must name at least one tag, like ["Member"]')
    return tags


def _item(node: Node, terms: Terms) -> DripItem:
    node.table(DRIP_ITEM_KEYS, what="a drip item table")
    given = node.child("name").value
    if not isinstance(given, str):
        raise node.fail('missing: every drip item needs a name, like "week-1"', "name")
    name = node.child("name").check(lambda v: vocab.name(v, "a drip item's name"))
    node = node.named(name)
    if "after" in node and "on" in node:
        raise node.fail("an item is released 'after' active time or 'on' a date, not both", "on")
    after = node.child("after").check(_active_time) if "after" in node else timedelta(0)
    on = node.child("on").check(calendar_time) if "on" in node else None
    steps: list[Step] = []
    if "tag" in node:
        steps.append(Step("apply_tag", {"tag": node.child("tag").check(terms.tag)}))
    for child in node.child("steps", []).elements('a list of steps like { do = "send_email" }'):
        steps.append(load_step(child, terms, "rule"))
    return DripItem(name, tuple(steps), after, on)


def _active_time(value: Any) -> timedelta:
    found = vocab.duration(value)
    if found.months:
        raise ValueError(
            f"active time has no calendar: write {value!r} in days or weeks (like '30d'), "
            "not months or years"
        )
    return timedelta(seconds=found.seconds)


def calendar_time(value: Any) -> datetime:
    """A TOML date or datetime, or its ISO text, as naive UTC (a date is its midnight)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"a date is written 2026-03-01 or 2026-03-01T09:00:00Z; got {value!r}"
            ) from None
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise ValueError(f"a date is written 2026-03-01 or 2026-03-01T09:00:00Z; got {value!r}")


def _check_items(node: Node, items: tuple[DripItem, ...]) -> None:
    """Names unique in the drip; items by active time listed in the order they come."""
    seen: set[str] = set()
    last: DripItem | None = None
    for index, item in enumerate(items):
        if item.name.casefold() in seen:
            raise node.fail(f"another item of this drip is named {item.name!r}", index, "name")
        seen.add(item.name.casefold())
        if item.on is not None:
            continue
        if last is not None and item.after < last.after:
            raise node.fail(
                f"items are listed in the order they come: {item.name!r} (after "
                f"{active_text(item.after)}) comes before {last.name!r} (after "
                f"{active_text(last.after)})",
                index,
                "after",
            )
        last = item


# -- active time --------------------------------------------------------------------------------

#: Whether access holds at a moment, and until when it holds (None: no end known).
Holds = Callable[[datetime], bool]
HoldsUntil = Callable[[datetime], datetime | None]


@dataclass(frozen=True, slots=True)
class Access:
    """What the state machine asks of the store about a member's access tags."""

    holds: Holds
    until: HoldsUntil


@dataclass
class Clock:
    """A member's position in a drip: active time banked up to ``since``, whether access held
    at ``since``, the items released, and when something next happens (``next_at``).

    Time moves only forward through :meth:`settle`: active time grows by the span since the
    last settle point when access held then. Every moment access can change is a settle
    point: a tag change (the dispatcher settles at the event's time) and the end of a grant
    (``next_at`` includes it), so the banked time is exact.
    """

    drip: Drip
    since: datetime
    active: bool
    banked: timedelta = timedelta(0)
    released: set[str] = field(default_factory=set)
    next_at: datetime | None = None

    def settle(self, at: datetime, access: Access) -> str | None:
        """Bank the time up to ``at`` and look at access then; "paused"/"resumed" on a change."""
        if at > self.since:
            if self.active:
                self.banked += at - self.since
            self.since = at
        held = access.holds(self.since)
        change = None if held == self.active else ("resumed" if held else "paused")
        self.active = held
        return change

    def due(self) -> list[DripItem]:
        """The items released now: active time reached (earned, so released even while
        paused), or a date passed while access holds."""
        return [
            item
            for item in self.drip.items
            if item.name not in self.released
            and (
                (item.on is None and item.after <= self.banked)
                or (item.on is not None and item.on <= self.since and self.active)
            )
        ]

    def plan(self, access: Access) -> None:
        """Set ``next_at``: now when an item is due, else the next release or the end of
        access while it holds; None while paused (a return settles it) or when all is out."""
        if self.due():
            self.next_at = self.since
            return
        if not self.active:
            self.next_at = None
            return
        left = [i for i in self.drip.items if i.name not in self.released]
        times = [self.since + (i.after - self.banked) for i in left if i.on is None]
        times += [i.on for i in left if i.on is not None]
        end = access.until(self.since)
        self.next_at = min([*times, *([end] if end is not None else [])], default=None)

    @property
    def finished(self) -> bool:
        """Every item released."""
        return all(item.name in self.released for item in self.drip.items)

    def state(self) -> Mapping[str, Any]:
        """The position as stored in ``drip_states`` (the items released are rows of
        ``drip_releases``, see ``release``)."""
        return {
            "since": self.since,
            "active": self.active,
            "active_us": self.banked // timedelta(microseconds=1),
            "next_at": self.next_at,
            "status": "done" if self.finished else ("running" if self.active else "paused"),
        }
