"""Actionsets: what a button may run, declared by the site in ``[credits]``, ``[tags]`` and
``[actionsets]`` of ``site.toml``; visitors never declare them.

```toml
[credits]
fields = ["_Credits"]

[credits.policy._Credits]            # optional, per field (see CreditPolicy)
decimals = 2                         # amounts like 2.5; stored as whole hundredths
expires = { subscription = "60d", promotion = "30d" }   # default expiry of grants by source
rollover_cap = 100                   # subscription credits kept when a new period's arrive
promotional_first = true             # promotional grants are spent before paid ones
clawback = "grant"                   # a refund takes back what is left of its grant only
                                     # ("balance": and the spent part from other credits;
                                     # "below_zero": and the rest below zero, as a debt)

[tags]
"Owns Course B" = "product"          # tag name = category

[actionsets.buy-course-b]
title = "Course B"
params.cost = { type = "int", default = 50 }
params.tag = { type = "tag", default = "Owns Course B" }
owns = "$tag"                        # holding this tag means already bought: nothing is debited
message = "Unlocked {title} — {balance} credits left"
# requires = ["Borrowed Guide"]      # refused (nothing written) unless the contact holds all
# blocked_by = ["Lock Guide"]        # refused while the contact holds any of these
# refused = "You can't return {title} yet"
steps = [
  { do = "debit", field = "_Credits", amount = "$cost" },
  { do = "apply_tag", tag = "$tag" },
  { do = "send_email", template = "purchase" },
]
```
A value written ``"$name"`` is the parameter ``name``, bound by the button or defaulted. The
steps are those of :mod:`shortcodes.membership.steps`; running them is the store's job
(``shortcodes.store.runner``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from shortcodes.errors import ActionsetParamError
from shortcodes.membership import vocabulary as vocab
from shortcodes.membership.credit_policy import (
    CLAWBACKS,
    DEFAULT_POLICY,
    GRANT_SOURCES,
    CreditPolicy,
)
from shortcodes.membership.keys import Key, Keys
from shortcodes.membership.source import Node
from shortcodes.membership.steps import ParamType, Ref, Step, Terms, load_step

PARAM_TYPES: tuple[ParamType, ...] = ("int", "tag", "str")

CREDIT_KEYS = Keys(
    "credits",
    "The balances a contact can hold. Each is changed only through the ledger.",
    {
        "fields": Key(
            "list of field names",
            "the credit fields; the first is the default of every step, button and product",
            '["_Credits"]',
            '["_Credits"]',
        ),
        "policy": Key(
            "table of field = policy",
            "per-field policies: decimals, expiry by source, rollover cap (one table each, below)",
            "{}",
        ),
    },
)
ACTIONSET_KEYS = Keys(
    "actionsets.<id>",
    "What a button runs: steps in one transaction, with parameters the button may bind. The id is what `action_id` names.",
    {
        "title": Key("text", "the name messages show as `{title}`", "the id", '"Course A"'),
        "params": Key(
            "table of parameters",
            'parameters a button may bind, used in the steps as `"$name"` (one table each, below)',
        ),
        "owns": Key(
            "tag name or $param",
            "holding this tag means already bought: the run writes nothing and says so",
            "",
            '"Owns Course A"',
        ),
        "requires": Key(
            "list of tag names",
            "refused (nothing written) unless the contact holds all of these",
            "[]",
            "[]",
        ),
        "blocked_by": Key(
            "list of tag names",
            "refused while the contact holds any of these (a lock tag)",
            "[]",
            "[]",
        ),
        "message": Key(
            "text",
            "shown after a run; may use `{title}`, `{balance}` and parameters",
            "",
            '"Unlocked {title}: {balance} credits left"',
        ),
        "refused": Key(
            "text",
            "shown when `requires` or `blocked_by` refuses the run",
            "",
            '"You cannot check in {title} yet"',
        ),
        "steps": Key(
            "list of steps",
            "what the run does, in order (see Steps and triggers)",
            "",
            '[{ do = "debit", amount = "$cost" }, { do = "apply_tag", tag = "Owns Course A" }]',
            required=True,
        ),
    },
)
PARAM_KEYS = Keys(
    "actionsets.<id>.params.<name>",
    "One parameter of an actionset (a bare number is short for an int with that default).",
    {
        "type": Key("one of int, tag, str", "what the button may bind", "", '"int"', required=True),
        "default": Key(
            "a value of the type",
            "the value when the button binds none (without one, the button must bind it)",
            "",
            "20",
        ),
    },
)


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter a button may bind: its type and default (None means the button must bind it)."""

    name: str
    type: ParamType
    default: int | str | None = None

    def convert(self, action: str, value: Any) -> int | str:
        """A bound value of this parameter's type; :class:`ActionsetParamError` otherwise."""
        try:
            if self.type == "int":
                return vocab.amount_text(value)
            if self.type == "tag":
                return vocab.tag_name(value)
            return vocab.text(value, "the value", vocab.MAX_TEXT).strip()
        except ValueError as exc:
            raise ActionsetParamError(f"parameter {self.name!r} of {action!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Actionset:
    """A named, validated list of steps a button runs in one transaction."""

    name: str
    title: str
    steps: tuple[Step, ...]
    params: Mapping[str, Param] = field(default_factory=dict)
    owns: str | Ref | None = None
    message: str | None = None
    requires: tuple[str | Ref, ...] = ()
    blocked_by: tuple[str | Ref, ...] = ()
    refused: str | None = None

    def bind(self, given: Mapping[str, Any]) -> dict[str, int | str]:
        """Check and convert the parameters a button bound; defaults fill the rest."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise ActionsetParamError(f"actionset {self.name!r} takes no parameter {unknown[0]!r}")
        bound: dict[str, int | str] = {}
        for name, param in self.params.items():
            if name in given:
                bound[name] = param.convert(self.name, given[name])
            elif param.default is not None:
                bound[name] = param.default
            else:
                raise ActionsetParamError(f"actionset {self.name!r} needs the parameter {name!r}")
        return bound


@dataclass(frozen=True, slots=True)
class SiteActions:
    """What the store needs from the site: credit fields, their policies, declared tags,
    actionsets."""

    credit_fields: tuple[str, ...] = ("_Credits",)
    tags: Mapping[str, str] = field(default_factory=dict)
    actionsets: Mapping[str, Actionset] = field(default_factory=dict)
    file: str = "<defaults>"
    policies: Mapping[str, CreditPolicy] = field(default_factory=dict)

    def policy(self, credit_field: str) -> CreditPolicy:
        """The policy of a declared credit field (the defaults when it declares none)."""
        return self.policies.get(credit_field, DEFAULT_POLICY)

    @property
    def terms(self) -> Terms:
        """The declarations step arguments are checked against."""
        return Terms(self.credit_fields, self.tags)


def load_actions(root: Node) -> SiteActions:
    """Validate ``[credits]``, ``[tags]`` and ``[actionsets]`` of a site.toml."""
    credits = root.child("credits", {})
    credit_fields = _credit_fields(credits)
    policies = _policies(credits.child("policy", {}), credit_fields)
    tags = _tags(root.child("tags", {}))
    terms = Terms(credit_fields, tags)
    actionsets = {
        name: _actionset(node, terms) for name, node in root.child("actionsets", {}).items()
    }
    return SiteActions(credit_fields, tags, actionsets, root.source.file, policies)


POLICY_KEYS = Keys(
    "credits.policy._Credits",
    "How one credit field behaves (one table per field that needs more than the defaults, "
    "named after it): every credit is a grant with a source, a category (paid or promotional) "
    "and an optional expiry, and debits spend grants in one order (see docs/credits.md).",
    {
        "decimals": Key(
            "whole number 0..6",
            "decimal places of amounts (2 allows 2.50); stored exactly as whole units",
            "0",
            "2",
        ),
        "expires": Key(
            "table of source = duration",
            "default expiry of new grants by source (table below)",
            "{}",
        ),
        "rollover_cap": Key(
            "amount",
            "a new subscription grant first expires older subscription credit above this",
            "no cap",
            "100",
        ),
        "promotional_first": Key(
            "true or false", "spend promotional credit before paid credit", "true", "true"
        ),
        "clawback": Key(
            '"grant", "balance" or "below_zero"',
            "what a refund does with credits of its purchase already spent: `grant` keeps them "
            "spent, `balance` takes them from the rest of the balance (never below zero), "
            "`below_zero` also takes what the balance lacks below zero, as a debt the next "
            "credit of the field settles (a contact in debt cannot spend)",
            '"grant"',
            '"below_zero"',
        ),
    },
)
EXPIRES_KEYS = Keys(
    "credits.policy._Credits.expires",
    "Default expiry of new grants of the field, by where they come from (no expiry when a "
    "source is not named; a grant can set its own).",
    {
        source: Key(
            "duration",
            f"how long {source} credits last",
            "",
            {"subscription": '"2mo"', "promotion": '"30d"'}.get(source, ""),
        )
        for source in GRANT_SOURCES
    },
)


def _policies(node: Node, credit_fields: tuple[str, ...]) -> dict[str, CreditPolicy]:
    """``[credits.policy.FIELD]`` tables, one per declared credit field at most."""
    policies: dict[str, CreditPolicy] = {}
    for name, table in node.table(what="a table of field name = policy").items():
        field_name = Node(node.source, table.path, name).check(
            lambda v: vocab.credit_field(v, credit_fields)
        )
        policies[field_name] = _policy(table)
    return policies


def _policy(node: Node) -> CreditPolicy:
    node.table(POLICY_KEYS, what="a credit policy table")
    decimals = node.child("decimals", 0).check(lambda v: vocab.whole_number(v, 0, 6))
    expires = {}
    for source, value in (
        node.child("expires", {}).table(EXPIRES_KEYS, "a table of source = duration").items()
    ):
        expires[source] = value.check(vocab.duration)
    cap = node.child("rollover_cap")
    clawback = node.child("clawback", "grant")
    if clawback.value not in CLAWBACKS:
        raise clawback.fail(f"must be one of {', '.join(map(repr, CLAWBACKS))}")
    return CreditPolicy(
        decimals=decimals,
        expires=expires,
        rollover_cap=None
        if cap.value is None
        else cap.check(lambda v: vocab.credit_units(v, decimals, allow_zero=True)),
        promotional_first=node.child("promotional_first", True).check(vocab.flag),
        clawback=str(clawback.value),
    )


def _credit_fields(node: Node) -> tuple[str, ...]:
    node.table(CREDIT_KEYS)
    fields = node.child("fields", ["_Credits"])
    names = tuple(item.check(vocab.field_name) for item in fields.elements("a list of field names"))
    if not names:
        raise fields.fail("must name at least one credit field, like ['_Credits']")
    if len({f.casefold() for f in names}) != len(names):
        raise fields.fail("names a field twice (names are case-insensitive)")
    return names


def _tags(node: Node) -> dict[str, str]:
    tags: dict[str, str] = {}
    for name, category in node.table(what="a table of tag name = category").items():
        key = Node(node.source, category.path, name).check(vocab.tag_name)
        if key.casefold() in {t.casefold() for t in tags}:
            raise category.fail("declares this tag twice (names are case-insensitive)")
        tags[key] = category.text()
    return tags


def _actionset(node: Node, terms: Terms) -> Actionset:
    name = Node(node.source, node.path, node.path[-1]).check(
        lambda value: vocab.name(value, "an actionset name")
    )
    node.table(ACTIONSET_KEYS, what='a table with "steps"')
    params = _params(node.child("params", {}), terms, name)
    types = {p.name: p.type for p in params.values()}
    steps = node.child("steps")
    if steps.value is None:
        raise node.fail('needs "steps", a list like [{ do = "debit", amount = 50 }]', "steps")
    loaded = tuple(
        load_step(step, terms, "actionset", types)
        for step in steps.elements('a list of steps like { do = "debit", amount = 50 }')
    )
    if not loaded:
        raise steps.fail('must list at least one step, like { do = "debit", amount = 50 }')
    texts = {k: node.child(k).text(default="") or None for k in ("message", "refused")}
    return Actionset(
        name,
        node.child("title").text(default=name),
        loaded,
        params,
        _tag_ref(node.child("owns"), terms, types) if "owns" in node else None,
        texts["message"],
        _tag_refs(node.child("requires", []), terms, types),
        _tag_refs(node.child("blocked_by", []), terms, types),
        texts["refused"],
    )


def _params(node: Node, terms: Terms, action: str) -> dict[str, Param]:
    params: dict[str, Param] = {}
    for pname, decl in node.table(what="a table of name = { type, default }").items():
        if isinstance(decl.value, int) and not isinstance(decl.value, bool):
            decl = Node(decl.source, decl.path, {"type": "int", "default": decl.value})
        decl.table(PARAM_KEYS, what='{ type = "int" | "tag" | "str", default = ... }')
        ptype = decl.child("type").value
        if ptype not in PARAM_TYPES:
            raise decl.fail(
                'declare a parameter as { type = "int" | "tag" | "str", default = ... }', "type"
            )
        param = Param(pname, ptype)
        default = decl.child("default")
        if default.value is not None:
            value = default.check(partial(_default, action, param))
            if ptype == "tag":
                default.check(terms.tag)
            param = Param(pname, ptype, value)
        params[pname] = param
    return params


def _default(action: str, param: Param, raw: Any) -> int | str:
    try:
        return param.convert(action, raw)
    except ActionsetParamError as exc:
        raise ValueError(str(exc)) from None


def _tag_ref(node: Node, terms: Terms, types: Mapping[str, ParamType]) -> str | Ref:
    value = node.value
    if isinstance(value, str) and value.startswith("$"):
        if types.get(value[1:]) != "tag":
            raise node.fail(f"{value!r} names no declared tag parameter")
        return Ref(value[1:])
    return node.check(terms.tag)


def _tag_refs(node: Node, terms: Terms, types: Mapping[str, ParamType]) -> tuple[str | Ref, ...]:
    if isinstance(node.value, str):
        return (_tag_ref(node, terms, types),)
    return tuple(
        _tag_ref(item, terms, types) for item in node.elements("a tag name or a list of tag names")
    )
