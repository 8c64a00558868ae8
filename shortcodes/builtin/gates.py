"""Builtins, the conditional protocol every gate shares (``memb_if``, the tag tests, login).

A gate's content splits at an else marker into a pass branch and a fail branch; only the chosen
branch renders. Markers: ``[else]``, ``[else_<name as written>]`` and ``[else_<name without
memb_>]``, any case, at the gate's own nesting level only (the compiler splits among the gate's
own children). Empty content prints ``Yes`` or ``No``. ``not`` (yes/1/true/on) negates; ``no``
does not. Every gate is registered enclosing, so a forgotten closer fails closed, and with the
numbered aliases ``name1`` ... ``name9`` that pages written for Memberium use.

An author mistake found at render time (an unknown operator, a condition that does not compile,
an empty tag list) is a :class:`GateError`. The gate does not handle it: it goes to the engine's
one error policy (``CompiledShortcode.fail``) like any failing handler, and the gate's fallback
is its fail branch. So strict mode raises, authors see the notice then the fail branch, and
visitors see the fail branch: **false whatever ``not`` says**, never the pass branch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from markupsafe import Markup

from shortcodes.context import Context
from shortcodes.registry import Attribute
from shortcodes.runtime import Shortcode

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


def fail_branch(sc: Shortcode) -> Markup:
    """Every gate's fallback: the fail branch (``No`` without content), whatever ``not`` says.

    When ``not`` itself cannot be read (``not="maybe"``) it is nothing: the author's intent is
    unknown, and with negation the else branch may be the one that holds the gated content.
    """
    try:
        readable = isinstance(sc.attrs.get("not", False), bool)
    except ValueError:  # a {{variable}} in not= that does not read as yes or no
        readable = False
    return branch(sc, False) if readable else Markup()


def gate(test: Test) -> Callable[[Shortcode, Context], Markup]:
    """Wrap a test in the shared protocol: negation, Yes/No and branches.

    A GateError from the test propagates to the engine's error policy (see the module docstring).
    """

    def handler(sc: Shortcode, ctx: Context) -> Markup:
        negate = bool(sc.attrs.get("not", False))
        return branch(sc, test(sc, ctx) != negate)

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
                fallback=fail_branch,
            )
            if full != name:
                spec.extra["alias_of"] = name
