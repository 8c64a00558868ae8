"""Fail-closed typos: an unknown pair that is a near miss of a registered enclosing shortcode.

A gate with a typo in its name (``[memb_has_any_tagg …]secret[/memb_has_any_tagg]``) is an
unknown name, and unknown names are text: the secret would go to every visitor. So an unknown
name written **as a pair** (an opener, then a closer of the same spelling later on the page)
whose name is a near miss of a registered *enclosing* shortcode is read as a gate that fails:
its content is hidden from visitors, preview shows a notice, and lint reports an error with
"did you mean". A near miss is, tried in this order:

1. the same name in another letter case (``[MEMB_IF]`` for ``memb_if``);
2. the name with a ``memb_`` prefix added or removed, in any case (``[if]``, ``[memb_memb_if]``);
3. at most two edits (a letter inserted, deleted, replaced, or two neighbours swapped) from a
   registered name of six characters or more, one edit from one of three to five characters.
   Shorter names only match by case, so ``[a]…[/a]`` never fails closed because ``b`` is a gate.

Every other unknown name stays text, byte for byte, and so does a near-miss opener that never
gets a closer (it is not written as a pair). The cost is one pass over the page's closers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

from shortcodes.errors import GateError
from shortcodes.parser import NAME_RE
from shortcodes.registry import ShortcodeSpec

PREFIX: Final = "memb_"

# A closer as spelled: "[/" and a name (as the grammar spells names) and "]".
_CLOSER: Final = re.compile(rf"\[/({NAME_RE.pattern})\]")


def max_edits(target: str) -> int:
    """How many edits from ``target`` still count as a typo of it (see the module docstring)."""
    if len(target) >= 6:
        return 2
    return 1 if len(target) >= 3 else 0


def within_edits(a: str, b: str, limit: int) -> bool:
    """True if ``a`` becomes ``b`` with at most ``limit`` insertions, deletions, replacements or
    swaps of neighbours (optimal string alignment), computed in a band: O(len * limit)."""
    if abs(len(a) - len(b)) > limit:
        return False
    if limit == 0:
        return a == b
    big = limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [big] * (len(b) + 1)
        row[0] = i
        for j in range(max(1, i - limit), min(len(b), i + limit) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            best = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, prev2[j - 2] + 1)
            row[j] = min(best, big)
        if min(row) > limit:
            return False
        prev2, prev = prev, row
    return prev[len(b)] <= limit


def near_miss(name: str, enclosing: tuple[str, ...]) -> str | None:
    """The registered enclosing name ``name`` is a typo of, or None (``enclosing`` sorted)."""
    lowered = {target.lower(): target for target in enclosing}
    low = name.lower()
    for variant in (low, low.removeprefix(PREFIX), PREFIX + low):
        if variant in lowered:
            return lowered[variant]
    for target in enclosing:
        if within_edits(low, target.lower(), max_edits(target)):
            return target
    return None


def _hide(target: str) -> Any:
    """The handler of a typo pair: it always fails, so the error policy hides its content."""

    def handler(sc: Any, ctx: Any) -> str:
        raise GateError(
            f"unknown shortcode [{sc.name}]; did you mean [{target}]? "
            "Its content is hidden from visitors until the name is fixed"
        )

    return handler


def _check(target: str) -> Any:
    """Lint's check of a typo pair: an error at its opening tag."""

    def check(node: Any, report: Any) -> None:
        report(
            node.offset,
            len(node.name) + 1,
            f"unknown shortcode [{node.name}] used as a pair; did you mean [{target}]? "
            "Its content is hidden from visitors",
            "error",
        )

    return check


@lru_cache(maxsize=1024)
def typo_spec(name: str, target: str) -> ShortcodeSpec:
    """The stand-in spec of the typo ``name`` of ``target``: a pair that hides its content."""
    return ShortcodeSpec(
        name=name,
        handler=_hide(target),
        description=f"a typo of [{target}]",
        check=_check(target),
        typo_of=target,
    )


@lru_cache(maxsize=256)
def _enclosing(names: tuple[str, ...], flags: tuple[bool, ...]) -> tuple[str, ...]:
    return tuple(sorted(n for n, gate in zip(names, flags, strict=True) if gate))


def with_typos(registry: Mapping[str, ShortcodeSpec], text: str) -> Mapping[str, ShortcodeSpec]:
    """``registry`` plus a stand-in for every typo closed somewhere in ``text`` (the registry
    itself when there is none, which is nearly always)."""
    if "[/" not in text:
        return registry
    enclosing: tuple[str, ...] | None = None
    seen: set[str] = set()
    found: dict[str, ShortcodeSpec] = {}
    for m in _CLOSER.finditer(text):
        name = m.group(1)
        if name in registry or name in seen:
            continue
        seen.add(name)
        if enclosing is None:
            specs = tuple(registry.values())
            enclosing = _enclosing(tuple(registry), tuple(s.enclosing for s in specs))
        target = near_miss(name, enclosing)
        if target is not None:
            found[name] = typo_spec(name, target)
    if not found:
        return registry
    return {**registry, **found}
