"""Builtins, the conditional protocol every gate shares (``memb_if``, the tag tests, login).

A gate's content splits at an else marker into a pass branch and a fail branch; only the chosen
branch renders. Markers: ``[else]``, ``[else_<name as written>]`` and ``[else_<name without
memb_>]``, any case, at the gate's own nesting level only (the compiler splits among the gate's
own children). Empty content prints ``Yes`` or ``No``. ``not`` (yes/1/true/on) negates; ``no``
does not. Every gate is registered enclosing, so a forgotten closer fails closed, and with the
numbered aliases ``name1`` ... ``name9`` that pages written for Memberium use.

An author mistake found at render time (an unknown operator, a condition that does not compile,
an empty tag list) is a :class:`GateError`: the gate is **false whatever ``not`` says** (so a
mistake never shows the pass branch), and authors see an inline notice in preview.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from markupsafe import Markup

from shortcodes.context import Context
from shortcodes.errors import GateError
from shortcodes.registry import Attribute
from shortcodes.runtime import Shortcode

from .common import notice

if TYPE_CHECKING:
    from shortcodes.environment import Environment

#: A gate's test: True when the visitor passes. Raises GateError for an author mistake.
Test = Callable[[Shortcode, Context], bool]
Check = Callable[..., None]

#: The numbered aliases Memberium registers so that a gate can contain a gate of its own kind.
NUMBERED = tuple(str(n) for n in range(1, 10))

NOT = Attribute(
    "not",
    bool,
    default=False,
    doc="`yes`/`1` negates the test; `no`/`0` (the default) does not",
)


_YES, _NO = Markup("Yes"), Markup("No")


def else_markers(name: str) -> tuple[str, ...]:
    """``else``, ``else_<name>`` and ``else_<name without memb_>`` (lower case, no duplicates)."""
    short = name.removeprefix("memb_")
    return tuple(dict.fromkeys(("else", f"else_{name}".lower(), f"else_{short}".lower())))


def branch(sc: Shortcode, passed: bool) -> Markup:
    """The chosen branch, or ``Yes``/``No`` when the gate has no content."""
    if not sc.content:
        return _YES if passed else _NO
    return sc.render_branch(passed)


def gate(test: Test) -> Callable[[Shortcode, Context], Markup]:
    """Wrap a test in the shared protocol: negation, Yes/No, branches, fail-false on mistakes."""

    def handler(sc: Shortcode, ctx: Context) -> Markup:
        negate = bool(sc.attrs.get("not", False))
        try:
            passed = test(sc, ctx)
        except GateError as error:
            return notice(sc, ctx, str(error)) + branch(sc, False)
        return branch(sc, passed != negate)

    handler.__doc__ = test.__doc__
    return handler


def register_gate(
    env: Environment,
    name: str,
    test: Test,
    *,
    attributes: Iterable[Attribute],
    description: str,
    example: str,
    check: Check | None = None,
    aliases: Iterable[str] = (),
) -> None:
    """Register gate ``name``, its ``aliases`` and the numbered forms of each.

    Every extra name records ``alias_of`` in its spec's ``extra`` so the reference groups them.
    """
    attributes = tuple(attributes)
    handler = gate(test)
    for base in (name, *aliases):
        for suffix in ("", *NUMBERED):
            full = base + suffix
            spec = env.add_shortcode(
                full,
                handler,
                enclosing=True,
                attributes=attributes,
                else_markers=else_markers(full),
                description=description,
                example=example,
                check=check,
            )
            if full != name:
                spec.extra["alias_of"] = name
