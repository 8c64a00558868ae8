"""Diagnostics: every problem in a page, with line, column and a caret snippet, without raising.

Structural problems come from the tree builder (unclosed gates, stray closers, near-miss names,
nesting depth); this module adds what needs the attributes: declared attributes that are unknown,
missing or of the wrong type, unknown ``{{variables}}``, unbalanced quotes, tags that never
finished, and each shortcode's own checks (``ShortcodeSpec.check``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from shortcodes.errors import LineIndex, Problem, Severity, make_problem
from shortcodes.nodes import ShortcodeNode
from shortcodes.parser import NAME_RE
from shortcodes.registry import ShortcodeSpec, convert
from shortcodes.tree import build_tree
from shortcodes.typos import with_typos
from shortcodes.variables import VAR_RE, is_known

if TYPE_CHECKING:
    from shortcodes.environment import Environment


class _Collector:
    """Turns (offset, width, message, severity) reports into Problems for one page."""

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.problems: list[Problem] = []
        self._seen: set[tuple[int, str]] = set()
        self._lines = LineIndex(text)

    def __call__(self, offset: int, width: int, message: str, severity: str = "error") -> None:
        if (offset, message) in self._seen:
            return
        self._seen.add((offset, message))
        sev: Severity = "warning" if severity == "warning" else "error"
        self.problems.append(
            make_problem(self.text, offset, message, sev, width, self.name, self._lines)
        )


def lint(env: Environment, text: str, name: str = "<page>") -> list[Problem]:
    """All problems of ``text`` for the shortcodes registered on ``env``, in page order."""
    from shortcodes.environment import walk

    report = _Collector(text, name)
    nodes = build_tree(text, env.shortcodes, env._lex, env.max_depth, report)
    registry = with_typos(env.shortcodes, text)
    starts: set[int] = set()
    for node in walk(nodes):
        starts.add(node.offset)
        _check_node(env, registry[node.name], node, report)
    _unfinished_tags(env, text, starts, report)
    return sorted(report.problems, key=lambda p: (p.offset, p.message))


def _check_node(
    env: Environment, spec: ShortcodeSpec, node: ShortcodeNode, report: _Collector
) -> None:
    for item in node.attrs:
        at = node.body_offset + item.offset
        if not item.quoted and ('"' in item.raw or "'" in item.raw):
            report(at, len(item.source), f"[{node.name}]: unbalanced quote in {item.source!r}")
        for m in VAR_RE.finditer(item.raw):
            if not is_known(m.group(1), m.group(2)):
                report(
                    at,
                    len(item.source),
                    f"[{node.name}]: unknown variable {m.group()}; it renders as an empty string",
                )
    if spec.attributes is not None:
        _check_declared(spec, node, report)
    if spec.check is not None:
        spec.check(node, report)
    _check_inner(env, node, report)


def _check_declared(spec: object, node: ShortcodeNode, report: _Collector) -> None:
    from shortcodes.attrs import attr_pairs
    from shortcodes.registry import ShortcodeSpec

    assert isinstance(spec, ShortcodeSpec)
    given = {key: (value, item) for key, value, item in attr_pairs(list(node.attrs))}
    declared = {a.name for a in spec.attributes or ()}
    for key, (_value, item) in given.items():
        if isinstance(key, str) and key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            report(
                node.body_offset + item.offset,
                len(item.source),
                f"[{node.name}] has no attribute {key!r} (it takes: {known})",
                "warning",
            )
    for attr in spec.attributes or ():
        if attr.name not in given:
            if attr.required:
                report(
                    node.offset, len(node.name) + 1, f"[{node.name}] needs attribute {attr.name}"
                )
            continue
        value, item = given[attr.name]
        if "{{" in value or "[" in value:
            continue  # known only at render time
        try:
            convert(attr, value)
        except ValueError as error:
            report(node.body_offset + item.offset, len(item.source), f"[{node.name}]: {error}")


def _check_inner(env: Environment, node: ShortcodeNode, report: _Collector) -> None:
    """Shortcodes nested in quoted attribute values are linted too (positions are the tag's)."""
    for item in node.attrs:
        if "[" in item.raw and item.quoted:
            for problem in lint(env, item.raw):
                report(
                    node.body_offset + item.offset,
                    len(item.source),
                    problem.message,
                    problem.severity,
                )


_TAG_START = re.compile(rf"\[/?({NAME_RE.pattern})")


def _unfinished_tags(env: Environment, text: str, starts: set[int], report: _Collector) -> None:
    """A registered name after ``[`` that did not become a tag: usually a missing ``]``."""
    for m in _TAG_START.finditer(text):
        if m.start() in starts or m.group(1) not in env.shortcodes:
            continue
        rest = text[m.end() : m.end() + 200]
        if text.startswith("[/", m.start()) and rest.startswith("]"):
            continue  # a closer; paired or reported as stray by the tree builder
        if text.startswith("]", m.end()) or re.match(r"[^\[\]]*\]", rest):
            continue  # a complete tag (escaped, or a closer of a tag shown as text)
        report(
            m.start(),
            len(m.group()),
            f"[{m.group(1)} is not a complete tag (no ']' before the next '[' or the end); "
            "it is shown as text",
        )
