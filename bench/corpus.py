"""Benchmark inputs: a seeded membership-page corpus in three syntaxes, and pathological inputs.

The corpus is generated once as a small tree (text, self-closing tags, enclosing conditionals) and
then written out in our WordPress syntax, in the `[% name %]` syntax of the PyPI package
`shortcodes` 5.4.0, and as a Jinja2 template. All three carry the same text, the same tags with the
same attributes, and the same nesting, so the implementations do the same work. The tree also
yields the expected output of the echo handlers, which lets the benchmark check that every
implementation rendered the page it was timed on.

This module is standard library only: the peer runner (which runs in its own venv) does not need it,
but the pathological builders are also imported by the child process that times them.
"""

from __future__ import annotations

import html
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

# Shortcode names the corpus uses. The benchmark registers echo handlers for exactly these.
SELF_CLOSING = ("memb_contact", "else_memb_has_any_tag", "else_memb_has_all_tags", "else_memb_if")
ENCLOSING = ("memb_has_any_tag", "memb_has_all_tags", "memb_if")
MAX_DEPTH = 4

_WORDS = (
    "members",
    "course",
    "lesson",
    "module",
    "welcome",
    "back",
    "your",
    "account",
    "credits",
    "balance",
    "download",
    "the",
    "workbook",
    "and",
    "watch",
    "replay",
    "of",
    "live",
    "session",
    "upgrade",
    "to",
    "gold",
    "for",
    "full",
    "access",
    "community",
    "forum",
    "coaching",
    "call",
    "schedule",
    "bonus",
    "video",
    "library",
    "progress",
    "certificate",
    "quiz",
    "results",
    "next",
    "step",
    "in",
    "this",
    "week",
    "thank",
    "you",
    "support",
    "team",
    "renewal",
    "date",
    "is",
)


@dataclass(frozen=True, slots=True)
class Attr:
    """One named attribute; ``quoted`` picks `k="v"` or the unquoted `k=v` form."""

    key: str
    value: str
    quoted: bool


@dataclass(frozen=True, slots=True)
class Leaf:
    """A self-closing shortcode."""

    name: str
    attrs: tuple[Attr, ...]


@dataclass(slots=True)
class Block:
    """An enclosing shortcode and its children (text, leaves, blocks)."""

    name: str
    attrs: tuple[Attr, ...]
    children: list[Node] = field(default_factory=list)


Node = str | Leaf | Block


# --- generation -----------------------------------------------------------------------------------


def _sentence(rng: random.Random, lo: int = 6, hi: int = 18) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words).capitalize()


def _contact_leaf(rng: random.Random) -> Leaf:
    kind = rng.random()
    if kind < 0.5:
        return Leaf("memb_contact", (Attr("fields", "FirstName", True),))
    if kind < 0.8:
        return Leaf("memb_contact", (Attr("fields", rng.choice(("LastName", "_Credits")), False),))
    return Leaf("memb_contact", (Attr("fields", "Email", True), Attr("default", "friend", True)))


def _paragraph(rng: random.Random) -> list[Node]:
    """An HTML paragraph with inline markup and, usually, a contact field in it."""
    nodes: list[Node] = ["<p>" + _sentence(rng)]
    if rng.random() < 0.75:
        nodes.extend((" ", _contact_leaf(rng)))
    tail = rng.random()
    if tail < 0.2:
        nodes.append(f', see <a href="/members/lesson-{rng.randint(1, 40)}">lesson</a> &amp; more')
    elif tail < 0.3:
        # Brackets that are not shortcodes: every implementation must pass them through.
        nodes.append(" [note: prices in USD]")
    elif tail < 0.4:
        nodes.append(" <strong>" + _sentence(rng, 2, 4) + "</strong>")
    nodes.append(". " + _sentence(rng, 4, 10) + ".</p>\n")
    return nodes


def _gate_attrs(rng: random.Random, name: str) -> tuple[Attr, ...]:
    if name == "memb_if":
        if rng.random() < 0.6:
            return (
                Attr("value1", str(rng.randint(0, 100)), True),
                Attr("test", rng.choice((">=", "<", "==")), True),
                Attr("value2", "50", True),
            )
        value = str(rng.randint(1, 20))
        same = Attr("value1", value, False), Attr("value2", value, False)
        return (same[0], Attr("test", "==", True), same[1])
    if rng.random() < 0.5:
        ids = ",".join(str(rng.randint(100, 999)) for _ in range(rng.randint(1, 3)))
        return (Attr("tagid", ids, True),)
    return (Attr("tagid", str(rng.randint(100, 999)), False),)


def _gate(rng: random.Random, depth: int) -> Block:
    """A conditional with 1-3 paragraphs, maybe an else branch, maybe nested gates (depth <= 4)."""
    name = rng.choice(ENCLOSING)
    block = Block(name, _gate_attrs(rng, name))
    for _ in range(rng.randint(1, 3)):
        block.children.extend(_paragraph(rng))
        if depth < MAX_DEPTH and rng.random() < 0.45:
            block.children.append(_gate(rng, depth + 1))
            block.children.append("\n")
    if rng.random() < 0.5:
        block.children.append(Leaf("else_" + name, ()))
        block.children.append("\n")
        block.children.extend(_paragraph(rng))
    return block


def _section(rng: random.Random, number: int) -> list[Node]:
    nodes: list[Node] = [f'<h2 id="s{number}">{_sentence(rng, 2, 5)}</h2>\n']
    for _ in range(rng.randint(1, 3)):
        nodes.extend(_paragraph(rng))
    for _ in range(rng.randint(1, 2)):
        nodes.append(_gate(rng, 1))
        nodes.append("\n")
    return nodes


def generate(size: int, seed: int) -> list[Node]:
    """A page of at least ``size`` bytes (in our syntax), the same for the same size and seed."""
    rng = random.Random(seed * 1_000_003 + size)
    page: list[Node] = []
    written = 0
    number = 0
    while written < size:
        number += 1
        section = _section(rng, number)
        page.extend(section)
        written += len(to_ours(section))
    return page


# --- serializers ----------------------------------------------------------------------------------


def _wp_attrs(attrs: tuple[Attr, ...]) -> str:
    return "".join(f' {a.key}="{a.value}"' if a.quoted else f" {a.key}={a.value}" for a in attrs)


def _walk(
    nodes: list[Node],
    text: Callable[[str], str],
    leaf: Callable[[Leaf], str],
    block: Callable[[Block, str], str],
) -> str:
    parts: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            parts.append(text(node))
        elif isinstance(node, Leaf):
            parts.append(leaf(node))
        else:
            parts.append(block(node, _walk(node.children, text, leaf, block)))
    return "".join(parts)


def _same(s: str) -> str:
    return s


def to_ours(nodes: list[Node]) -> str:
    """WordPress syntax: `[name k="v"]`, `[name k=v]content[/name]`."""
    return _walk(
        nodes,
        _same,
        lambda n: f"[{n.name}{_wp_attrs(n.attrs)}]",
        lambda n, inner: f"[{n.name}{_wp_attrs(n.attrs)}]{inner}[/{n.name}]",
    )


def to_peer(nodes: list[Node]) -> str:
    """`shortcodes` 5.4.0 syntax: `[% name k="v" %]`, `[% name %]content[% endname %]`."""
    return _walk(
        nodes,
        _same,
        lambda n: f"[% {n.name}{_wp_attrs(n.attrs)} %]",
        lambda n, inner: f"[% {n.name}{_wp_attrs(n.attrs)} %]{inner}[% end{n.name} %]",
    )


def _jinja_args(node: Leaf | Block) -> str:
    args = [json.dumps(node.name)] + [f"{a.key}={json.dumps(a.value)}" for a in node.attrs]
    return ", ".join(args)


def to_jinja_call(nodes: list[Node]) -> str:
    """Jinja2, the fair equivalent of our echo handlers (the comparison the target uses).

    Our enclosing handler is a Python function that receives the attributes and decides whether to
    render its content; Jinja2's equivalent is a `{% call %}` block on a Python global that gets
    the attributes and a `caller` it may invoke. A self-closing tag is a call of the echo global.
    """
    return _walk(
        nodes,
        _same,
        lambda n: "{{ sc(" + _jinja_args(n) + ") }}",
        lambda n, inner: "{% call sc_block(" + _jinja_args(n) + ") %}" + inner + "{% endcall %}",
    )


def to_jinja_if(nodes: list[Node]) -> str:
    """Jinja2 written the way a theme author would gate text: `{% if gate(...) %}...{% endif %}`.

    Cheaper for Jinja2 than the call form (no caller closure), so it is printed for information.
    """
    return _walk(
        nodes,
        _same,
        lambda n: "{{ sc(" + _jinja_args(n) + ") }}",
        lambda n, inner: "{% if gate(" + _jinja_args(n) + ") %}" + inner + "{% endif %}",
    )


def echo_leaf(name: str, values: list[str]) -> str:
    """The body of every self-closing echo handler: the same cheap, escaped string everywhere.

    Ours and Jinja2's wrap it in Markup; the peer (bench/peer_shortcodes.py) has a copy. Using the
    same body in all implementations means the benchmark compares engines, not escaping idioms
    (``Markup("%s") % value`` alone costs ~3 us, several times this whole function).
    """
    return f'<span class="{html.escape(name)}">{html.escape(" ".join(values))}</span>'


def expected_output(nodes: list[Node]) -> str:
    """The page as the echo handlers render it: text as is, tags echoed, gates show content."""
    return _walk(
        nodes, _same, lambda n: echo_leaf(n.name, [a.value for a in n.attrs]), lambda n, i: i
    )


def stats(nodes: list[Node]) -> tuple[int, int]:
    """(number of shortcodes, deepest nesting of enclosing shortcodes)."""
    count, deepest = 0, 0
    stack: list[tuple[list[Node], int]] = [(nodes, 0)]
    while stack:
        children, depth = stack.pop()
        deepest = max(deepest, depth)
        for node in children:
            if isinstance(node, Leaf):
                count += 1
            elif isinstance(node, Block):
                count += 1
                stack.append((node.children, depth + 1))
    return count, deepest


# --- pathological inputs --------------------------------------------------------------------------
# Registered for these: `a` enclosing (fail-closed gate), `b` and `c` plain (self-closing unless a
# closer follows). Each builder takes the repetition count n; the benchmark times n and 4n.


@dataclass(frozen=True, slots=True)
class Pathological:
    """One hostile input family: how to build it, its base size, and whether text must survive."""

    name: str
    build: Callable[[int], str]
    n: int
    identity: bool  # True when the engine must return the input byte for byte
    #: What is timed: "render" (cold env.render), "lint" (env.lint) or "markdown" (the host's
    #: Markdown step, MarkdownConverter.convert).
    kind: str = "render"


PATHOLOGICAL: tuple[Pathological, ...] = (
    Pathological("lone [ (text between)", lambda n: "[ " * n, 20_000, True),
    Pathological("[[[[ run", lambda n: "[" * n, 20_000, True),
    Pathological("unclosed plain tags [b]", lambda n: "[b]x " * n, 20_000, False),
    Pathological("unclosed gates [a] (fail closed)", lambda n: "[a]x " * n, 10_000, False),
    Pathological("stray closers [/a]", lambda n: "[/a]x " * n, 20_000, True),
    Pathological("same-name nesting [a]*n[/a]*n", lambda n: "[a]" * n + "[/a]" * n, 10_000, False),
    Pathological("open [b]*n, stray [/c]*n", lambda n: "[b]" * n + "[/c]" * n, 10_000, False),
    Pathological("quoted value (chars)", lambda n: '[b x="' + "v" * n + '"]', 200_000, False),
    Pathological(
        "unterminated quoted value", lambda n: '[b x="' + "v" * n + "] tail", 200_000, False
    ),
    Pathological('lines of [a x="[b]', lambda n: '[a x="[b]\n' * n, 10_000, False),
    Pathological('[a " repeated', lambda n: '[a "' * n, 20_000, True),
    Pathological("[b x=1 never closed", lambda n: "[b x=1 " * n, 20_000, True),
    Pathological('nested quoted [b x="[b x="...', lambda n: '[b x="' * n + '"]' * n, 10_000, False),
    Pathological("escaped [[b]]", lambda n: "[[b]] " * n, 20_000, False),
    Pathological("one tag, n attributes", lambda n: "[b " + "k=v " * n + "]", 50_000, False),
    Pathological(
        "backslashes in value", lambda n: '[b x="' + "\\" * (2 * n) + '"]', 100_000, False
    ),
    Pathological("{{ in value", lambda n: '[b x="' + "{{" * n + '"]', 50_000, False),
    Pathological("<: stand-ins in value", lambda n: '[b x="' + "<:" * n + '"]', 50_000, False),
    Pathological('unknown names [x "a" (never read)', lambda n: '[x "a" ' * n + "]", 20_000, True),
    Pathological("quoted [b] past the last ]", lambda n: '[a "[b]' * n + " v" * n, 10_000, False),
    # Readings that fail across a long stretch (each opener falls back to WordPress's first "]").
    Pathological('quoted "[]" never followed by ]', lambda n: '[b "[]" ' * n, 20_000, False),
    Pathological("[b x=1 openers, then [/c]", lambda n: "[b x=1 " * n + "[/c]", 20_000, False),
    # HTML contexts (shortcodes/html.py): constructs that never end, and many attribute values.
    Pathological("unclosed <!-- repeated", lambda n: "<!-- [b] " * n, 20_000, False),
    Pathological('unclosed quote <a title="', lambda n: '<a title="[b] ' * n, 20_000, False),
    Pathological('many <a title="[b]">', lambda n: '<a title="[b]">x</a>' * n, 10_000, False),
    Pathological("bogus comments </[b] never ended", lambda n: "</[b] " * n, 20_000, True),
    Pathological("empty comments <!-->[b]", lambda n: "<!-->[b] " * n, 20_000, False),
    Pathological("typo pairs [gatde]x[/gatde]", lambda n: "[gatde]x[/gatde]" * n, 10_000, False),
    # Author inputs besides rendering (issue 14): lint and the host's Markdown step.
    Pathological("lint: unclosed gates [a]", lambda n: "[a]x " * n, 10_000, False, "lint"),
    Pathological("lint: gates on one line [a x]", lambda n: "[a x]y " * n, 10_000, False, "lint"),
    Pathological("lint: stray closers [/a]", lambda n: "[/a]x " * n, 10_000, False, "lint"),
    Pathological("lint: unfinished [b x", lambda n: "[b x " * n, 10_000, False, "lint"),
    Pathological("lint: near-miss names [bb]", lambda n: "[bb]x " * n, 10_000, False, "lint"),
    Pathological(
        'lint: quoted "[]" never followed by ]', lambda n: '[b "[]" ' * n, 10_000, False, "lint"
    ),
    Pathological(
        "markdown: [b x=1 openers, then [/c]",
        lambda n: "[b x=1 " * n + "[/c]",
        10_000,
        False,
        "markdown",
    ),
    Pathological("markdown: [a x never closed", lambda n: "[a x " * n, 10_000, False, "markdown"),
    Pathological("markdown: lone [", lambda n: "[ " * n, 10_000, False, "markdown"),
    Pathological("markdown: tags [a]x[/a]", lambda n: "[a]x[/a]\n" * n, 10_000, False, "markdown"),
)
