"""Automations loops: refuse rule sets whose triggers and effects form a cycle ``check`` can see.

Each step kind says what events it can cause (the step registry's ``emits``); a rule's step
links to every rule those events would trigger (:func:`triggered_by`, the static counterpart of
the dispatcher's match). A cycle in that graph is refused at the step that closes it, with the
chain in the message. At run time, chains the graph cannot see are stopped by ``max_chain``
(:func:`shortcodes.automations.executor.stop_loop`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from shortcodes.membership.source import Node
from shortcodes.membership.steps import STEPS

if TYPE_CHECKING:  # rules.py calls check_loops: only the types go the other way
    from shortcodes.automations.rules import Rule, Trigger

#: The event kinds a ``field_above`` trigger watches.
_VALUE_EVENTS = ("balance_changed", "field_set", "points_changed")


def triggered_by(trigger: Trigger, effect: tuple[str, str]) -> bool:
    """Whether an event a step can cause, (kind, the tag or field it names), fires ``trigger``
    (the static counterpart of the dispatcher's match, over what site.toml can see)."""
    kind, named = effect
    if trigger.kind == "field_above":
        return kind in _VALUE_EVENTS and named.casefold() == str(trigger.args["field"]).casefold()
    if kind != trigger.kind:
        return False
    wanted = trigger.args.get("tag")
    return wanted is None or str(wanted).casefold() == named.casefold()


def _edges(rule: Rule, rules: Mapping[str, Rule]) -> list[tuple[int, str, str]]:
    """(step position, what it does, the rule it triggers) for each step of ``rule`` whose
    event fires another rule. Its own effects are no edge: they never start it again, unless it
    says ``retrigger = true``, and then the author chose it (the run-time chain limit bounds it).
    """
    found = []
    # A drip's releases are no edge: each happens once per member and item however often the
    # drip is triggered, so a chain through one ends.
    for position, step in enumerate((*rule.steps, *rule.otherwise)):
        for effect in STEPS[step.kind].emits(step.args):
            for other in rules.values():
                if other.name != rule.name and triggered_by(other.trigger, effect):
                    found.append((position, f"{step.kind} {effect[1]!r}".strip(), other.name))
    return found


def check_loops(rules: Mapping[str, Rule], nodes: Mapping[str, Node]) -> None:
    """Refuse rules whose steps trigger each other around a cycle (A's effect starts B, whose
    effect starts A...), at the step that closes it: such a chain would never end. A rule's
    own effects never start it again unless it says ``retrigger = true``; then the chain
    limit at run time bounds it."""
    edges = {name: _edges(rule, rules) for name, rule in rules.items()}
    done: set[str] = set()
    for start in rules:
        cycle = _cycle_from(start, edges, done)
        if cycle is not None:
            _refuse(cycle, rules, nodes)


def _cycle_from(
    start: str, edges: Mapping[str, list[tuple[int, str, str]]], done: set[str]
) -> list[tuple[str, int, str]] | None:
    """A cycle reachable from ``start`` as (rule, step position, what it does); depth first,
    iterative (a long chain of rules cannot overflow the stack)."""
    path: list[tuple[str, int, str]] = []
    on_path: dict[str, int] = {}
    stack: list[tuple[str, int]] = [(start, 0)]
    while stack:
        name, next_edge = stack.pop()
        if next_edge == 0:
            if name in done:
                continue
            on_path[name] = len(path)
        out = edges[name]
        if next_edge < len(out):
            position, what, target = out[next_edge]
            stack.append((name, next_edge + 1))
            if target in on_path:
                return [*path[on_path[target] :], (name, position, what)]
            if target not in done:
                path.append((name, position, what))
                stack.append((target, 0))
            continue
        done.add(name)
        del on_path[name]
        if path and stack:
            path.pop()
    return None


def _refuse(
    cycle: list[tuple[str, int, str]], rules: Mapping[str, Rule], nodes: Mapping[str, Node]
) -> None:
    """Fail at the step that closes ``cycle``, naming every link."""
    names = [name for name, _, _ in cycle]
    links = [f"{name} ({what})" for name, _, what in cycle]
    chain = " -> ".join([*links, names[0]])
    name, position, _ = cycle[-1]
    rule = rules[name]
    key, index = (
        ("steps", position)
        if position < len(rule.steps)
        else (
            "otherwise",
            position - len(rule.steps),
        )
    )
    raise nodes[name].fail(
        f"these rules trigger each other in a loop that would never end: {chain}; "
        "change a trigger or a step so the chain stops",
        key,
        index,
    )
