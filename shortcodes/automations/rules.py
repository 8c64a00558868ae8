"""Automation rules: load and validate ``[[rules]]``, ``[loyalty]`` and ``[automations]`` of site.toml.

A rule is a trigger, an optional condition (the ``memb_if`` condition language), the steps it
runs when the condition holds and, optionally, ``otherwise`` steps for when it does not::

    [[rules]]
    name = "monthly-credits"
    trigger = "payment_succeeded(monthly)"       # or { on = "payment_succeeded", product = "monthly" }
    conditions = "not has_tag('Payment Problem')"
    steps = [
      { do = "credit", field = "_Credits", amount = 50 },
      { do = "send_email", template = "monthly-credits" },
      { do = "wait", for = "24h" },
      { do = "remove_tag_after", tag = "Lock Field Guide", after = "14d" },
    ]

Every problem is a :class:`~shortcodes.errors.ConfigError` naming the file, the line and column,
and the key (``rules[0].steps[2].for``). Steps are those of :mod:`shortcodes.membership.steps`,
and durations those of :mod:`shortcodes.membership.vocabulary`; a run stores a JSON snapshot of
its steps (:meth:`~shortcodes.membership.steps.Step.to_json`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

from shortcodes.automations.drip import Drip, load_drip
from shortcodes.automations.loops import check_loops
from shortcodes.automations.sync import SyncConfig, load_sync
from shortcodes.conditions import compile_condition
from shortcodes.errors import ConditionSyntaxError
from shortcodes.membership import vocabulary as vocab
from shortcodes.membership.actionsets import SiteActions
from shortcodes.membership.keys import Key, Keys
from shortcodes.membership.source import Node
from shortcodes.membership.steps import Step, Terms, load_step
from shortcodes.membership.vocabulary import Duration

_TRIGGER_TEXT = re.compile(r"\s*([a-z_]+)\s*(?:\((.*)\))?\s*", re.S)


@dataclass(frozen=True, slots=True)
class TriggerKind:
    """What can start a rule: its arguments (in the order the text form takes them) and, for the
    reference, what it means and an example."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    doc: str
    example: str

    @property
    def names(self) -> tuple[str, ...]:
        """Every argument, required first."""
        return self.required + self.optional


#: Every trigger, in the order the documentation lists them.
TRIGGERS: dict[str, TriggerKind] = {
    "tag_applied": TriggerKind(
        ("tag",),
        (),
        "A tag was applied to the contact (by a button, a rule, a webhook, an admin).",
        "tag_applied('Owns Masterclass')",
    ),
    "tag_removed": TriggerKind(
        ("tag",), (), "A tag was removed from the contact, or expired.", "tag_removed('All Access')"
    ),
    "payment_succeeded": TriggerKind(
        (),
        ("product",),
        "A payment for `product` (any product when left out) succeeded: Stripe's "
        "`invoice.paid` or `checkout.session.completed`, or `POST /hooks/payments/succeeded`.",
        "payment_succeeded(all-access)",
    ),
    "payment_failed": TriggerKind(
        (), ("product",), "A payment for `product` failed.", "payment_failed(all-access)"
    ),
    "refunded": TriggerKind(
        (), ("product",), "A payment for `product` was refunded.", "refunded(all-access)"
    ),
    "field_above": TriggerKind(
        ("field", "value"),
        (),
        "A field (a credit balance, points or a custom number) went from "
        "at most `value` to above it.",
        "field_above('Points', 200)",
    ),
    "balance_below": TriggerKind(
        ("field", "value"),
        (),
        "A change took a credit balance from at least `value` to below it (each time it "
        "happens; judged on that change, written in its transaction).",
        "balance_below(_Credits, 10)",
    ),
    "credits_expiring": TriggerKind(
        ("field",),
        ("within",),
        "A grant of the field with credits left expires within `within` (default 7d): once per "
        "grant and rule, from the worker.",
        "credits_expiring(_Credits, 7d)",
    ),
    "stage_changed": TriggerKind(
        (),
        ("stage",),
        "The contact reached a loyalty stage (`stage`, or any).",
        "stage_changed('Gold')",
    ),
    "referral_made": TriggerKind(
        (),
        (),
        "The contact referred someone (`POST /hooks/referrals/made`); the run's trigger names "
        "the referred contact, so `award_points` can give to `referred` or `both`.",
        "referral_made()",
    ),
    "referral_approved": TriggerKind(
        (),
        (),
        "A referral by the contact was approved (`POST /hooks/referrals/approved`), once per "
        "referred contact; `award_points` can give to `referred` or `both`.",
        "referral_approved()",
    ),
    "login": TriggerKind((), (), "The contact logged in.", "login()"),
    "webhook": TriggerKind(
        ("name",),
        (),
        "`POST /hooks/events/<name>` named the contact (a CRM's own event).",
        "webhook('workshop-attended')",
    ),
    "unlocked": TriggerKind(
        (),
        ("item",),
        "A drip released the item named `item` (any item of any drip when left out) to the "
        "contact: once per member and item (see `[rules.drip]`). The run's `trigger` holds "
        "`item` and `drip`, which an email template can show.",
        "unlocked('week-1')",
    ),
}
RULE_KEYS = Keys(
    "[[rules]]",
    "An automation rule: when its trigger fires for a contact (and its conditions hold), the worker runs its steps, exactly once.",
    {
        "name": Key(
            "name",
            "the rule's unique name (runs, logs and the preview name it)",
            "",
            '"monthly-credits"',
            required=True,
        ),
        "description": Key(
            "text", "what the rule is for, for people", "", '"Each paid month adds 50 credits."'
        ),
        "trigger": Key(
            "trigger",
            'what starts it: `"kind(arguments)"` or `{ on = "kind", ... }` (see Steps and triggers)',
            "",
            '"payment_succeeded(monthly)"',
            required=True,
        ),
        "conditions": Key(
            "condition",
            "run `steps` only when this holds at the time of the trigger (the `memb_if` condition language)",
            "",
            "\"credits('_Credits') < 500\"",
        ),
        "steps": Key(
            "list of steps",
            "what it does, in order; `wait` delays the rest (required unless the rule has a "
            "`drip`)",
            "",
            '[{ do = "credit", amount = 50 }]',
        ),
        "otherwise": Key(
            "list of steps",
            "what it does when `conditions` do not hold",
            "[]",
            '[{ do = "send_email", template = "over-limit" }]',
        ),
        "retrigger": Key(
            "boolean",
            "whether the rule's own effects may start it again (a chain of runs stops at "
            "`[automations] max_chain`)",
            "false",
            "false",
        ),
        "drip": Key(
            "table `[rules.drip]`",
            "a drip sequence the trigger starts, once per member (table below)",
            "",
            "",
        ),
    },
)
LOYALTY_KEYS = Keys(
    "loyalty",
    "Loyalty points: earned points wait before they can be spent, expire, and move the contact through stages.",
    {
        "available_after": Key(
            'duration or "now"',
            'how long earned points stay pending (`"now"`: available at once); an award '
            "can set its own",
            '"14d"',
            '"14d"',
        ),
        "expire_after": Key("duration", "how long available points last", '"1y"', '"1y"'),
        "stages": Key(
            "table of stage = points",
            "stages by lifetime points (a `stage_changed` trigger fires on each move)",
            "{ Bronze = 0, Silver = 500, Gold = 1500 }",
            "{ Bronze = 0, Silver = 500, Gold = 1500 }",
        ),
    },
)
AUTOMATION_KEYS = Keys(
    "automations",
    "How the worker delivers what rules and buttons queue: emails and outgoing webhooks.",
    {
        "smtp": Key(
            "smtp:// or smtps:// URL",
            "the mail server; without one, emails are written as `.eml` files in the instance's `outbox/` folder",
            "",
            '"smtp://localhost:25"',
        ),
        "email_from": Key(
            "text",
            "the sender of every email",
            '"no-reply@localhost"',
            '"Credit Academy <hello@academy.example.com>"',
        ),
        "webhook_secret": Key(
            "text",
            "the HMAC secret outgoing webhooks are signed with",
            "`[webhooks] secret`",
            '"another-long-random-string"',
        ),
        "max_attempts": Key(
            "whole number 1..50",
            "deliveries tried before a message is dead (`outbox redeliver` queues it again)",
            "8",
            "8",
        ),
        "max_chain": Key(
            "whole number 1..100",
            "the longest chain of runs caused by runs; the next run fails with the chain in its "
            "message and the admins get an email",
            "10",
            "10",
        ),
        "site_id": Key(
            "name",
            "how `[[sync]]` peers know this site (the origin of the changes it sends)",
            "",
            '"academy"',
        ),
    },
)
#: How many runs a chain of runs caused by runs may hold before the next one is refused.
DEFAULT_MAX_CHAIN = 10
DEFAULT_STAGES: tuple[tuple[str, int], ...] = (("Bronze", 0), ("Silver", 500), ("Gold", 1500))
DEFAULT_AVAILABLE_AFTER = vocab.duration("14d")
DEFAULT_EXPIRE_AFTER = vocab.duration("1y")
#: How far ahead ``credits_expiring(field)`` looks when no ``within`` is given.
DEFAULT_EXPIRING_WITHIN = vocab.duration("7d")


@dataclass(frozen=True, slots=True)
class Trigger:
    """What starts a rule: a kind and its arguments (``tag``, ``product``, ``field``...)."""

    kind: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """The trigger in the text form, e.g. ``tag_applied('Day 1')``."""
        inner = ", ".join(repr(v) for v in self.args.values())
        return f"{self.kind}({inner})"


@dataclass(frozen=True, slots=True)
class Rule:
    """A validated rule: its trigger, condition, and the steps for either outcome."""

    name: str
    trigger: Trigger
    steps: tuple[Step, ...]
    otherwise: tuple[Step, ...] = ()
    conditions: str | None = None
    description: str = ""
    #: Whether the rule's own effects may trigger it again (off: they never do).
    retrigger: bool = False
    #: The drip sequence the trigger starts, if the rule has one.
    drip: Drip | None = None


@dataclass(frozen=True, slots=True)
class LoyaltyConfig:
    """Points: how long earned points stay pending, when they expire, the stage thresholds."""

    #: How long earned points stay pending, or "now" (available at once).
    available_after: Duration | Literal["now"] = DEFAULT_AVAILABLE_AFTER
    expire_after: Duration = DEFAULT_EXPIRE_AFTER
    stages: tuple[tuple[str, int], ...] = DEFAULT_STAGES

    def stage_for(self, lifetime: int) -> str:
        """The highest stage whose threshold ``lifetime`` points reach."""
        reached = [name for name, threshold in self.stages if lifetime >= threshold]
        return reached[-1] if reached else ""


@dataclass(frozen=True, slots=True)
class AutomationConfig:
    """Everything automations read from site.toml (``actions`` is the same object the store
    reads, not a second reading)."""

    rules: Mapping[str, Rule] = field(default_factory=dict)
    loyalty: LoyaltyConfig = field(default_factory=LoyaltyConfig)
    actions: SiteActions = field(default_factory=SiteActions)
    smtp: str = ""
    email_from: str = "no-reply@localhost"
    webhook_secret: str = ""
    max_attempts: int = 8
    file: str = "<defaults>"
    #: The longest chain of runs caused by runs (see ``dispatch``); the next one fails.
    max_chain: int = DEFAULT_MAX_CHAIN
    #: Contacts holding this tag get the alert when a chain is stopped (the site's admins).
    admin_tag: str = "Site Admin"
    #: This site's id and the ``[[sync]]`` peers its changes are sent to.
    sync: SyncConfig = field(default_factory=SyncConfig)

    def rules_for(self, kind: str) -> list[Rule]:
        """The rules whose trigger has this kind, in file order."""
        return [r for r in self.rules.values() if r.trigger.kind == kind]


def load_automations(path: str | Path) -> AutomationConfig:
    """The automations of a site.toml file (read and validated whole, like every reader)."""
    from shortcodes.membership.config import load_config_file

    return load_config_file(path).automations


def parse_automations(text: str, file: str = "site.toml") -> AutomationConfig:
    """The automations of a site.toml text (validated whole)."""
    from shortcodes.membership.config import parse_config

    return parse_config(text, file).automations


def load_rules(
    root: Node, actions: SiteActions, webhook_secret: str, admin_tag: str = "Site Admin"
) -> AutomationConfig:
    """Validate ``[[rules]]``, ``[loyalty]`` and ``[automations]``; outgoing webhooks sign with
    ``[automations] webhook_secret`` or else the site's shared ``webhook_secret``. Rules whose
    effects trigger each other in a loop are refused (:func:`.loops.check_loops`)."""
    settings = _settings(root.child("automations", {}))
    settings.setdefault("webhook_secret", webhook_secret)
    loyalty = _loyalty(root.child("loyalty", {}))
    rules: dict[str, Rule] = {}
    nodes: dict[str, Node] = {}
    for node in root.child("rules", []).elements("a list of [[rules]] tables"):
        rule = _rule(node, actions.terms)
        if rule.name.casefold() in {n.casefold() for n in rules}:
            raise node.named(rule.name).fail("another rule has this name", "name")
        rules[rule.name] = rule
        nodes[rule.name] = node.named(rule.name)
    _check_drip_items(rules, nodes)
    check_loops(rules, nodes)
    sync = load_sync(root, settings.pop("site_id", None))
    return AutomationConfig(
        rules, loyalty, actions, file=root.source.file, admin_tag=admin_tag, sync=sync, **settings
    )


def _settings(node: Node) -> dict[str, Any]:
    node.table(AUTOMATION_KEYS)
    out: dict[str, Any] = {}
    for key in ("smtp", "email_from", "webhook_secret"):
        if key in node:
            out[key] = node.child(key).text()
    if out.get("smtp") and not out["smtp"].startswith(("smtp://", "smtps://")):
        raise node.fail("write the server as smtp://host:port (or smtps://)", "smtp")
    if "max_attempts" in node:
        out["max_attempts"] = node.child("max_attempts").check(
            lambda v: vocab.whole_number(v, 1, 50)
        )
    if "site_id" in node:
        out["site_id"] = node.child("site_id").check(lambda v: vocab.name(v, "a site_id"))
    if "max_chain" in node:
        out["max_chain"] = node.child("max_chain").check(lambda v: vocab.whole_number(v, 1, 100))
    return out


def _loyalty(node: Node) -> LoyaltyConfig:
    node.table(LOYALTY_KEYS)
    defaults = LoyaltyConfig()
    available = node.child("available_after", str(defaults.available_after)).check(
        vocab.delay_or_now
    )
    expire = node.child("expire_after", defaults.expire_after.text).check(vocab.duration)
    stages = _stages(node.child("stages")) if "stages" in node else defaults.stages
    return LoyaltyConfig(available, expire, stages)


def _stages(node: Node) -> tuple[tuple[str, int], ...]:
    raw = node.value
    ok = (
        isinstance(raw, dict)
        and raw
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in raw.values())
    )
    if not ok:
        raise node.fail("write stages as { Bronze = 0, Silver = 500, Gold = 1500 } (points >= 0)")
    ordered = tuple(sorted(raw.items(), key=lambda item: item[1]))
    if len({v for _, v in ordered}) != len(ordered):
        raise node.fail("two stages have the same threshold")
    return ordered


def _rule(node: Node, terms: Terms) -> Rule:
    given = node.table(what="a [[rules]] table").child("name").value
    if isinstance(given, str) and given:
        node = node.named(given)
    node.table(RULE_KEYS)
    name = node.child("name").check(
        lambda v: vocab.name(v, "every rule needs a name that") if v is not None else _no_name()
    )
    if "trigger" not in node:
        raise node.fail(
            "missing: every rule needs a trigger, like \"tag_applied('Member')\"", "trigger"
        )
    trigger = _trigger(node.child("trigger"), terms)
    conditions = _conditions(node.child("conditions"))
    drip = None
    if "drip" in node:
        drip = load_drip(node.child("drip"), terms, _applied_tag(trigger))
    if "steps" not in node and drip is None:
        raise node.fail("missing: every rule needs steps (or a drip)", "steps")
    steps = _steps(node.child("steps", []), terms, allow_empty=drip is not None)
    otherwise = _steps(node.child("otherwise", []), terms, allow_empty=True)
    if otherwise and conditions is None:
        raise node.fail("'otherwise' steps need 'conditions' to be false", "otherwise")
    description = node.child("description").text(default="")
    retrigger = node.child("retrigger", False).check(vocab.flag)
    return Rule(name, trigger, steps, otherwise, conditions, description, retrigger, drip)


def _applied_tag(trigger: Trigger) -> str | None:
    """The tag of a ``tag_applied`` trigger (a drip's default access), else None."""
    return str(trigger.args["tag"]) if trigger.kind == "tag_applied" else None


def _check_drip_items(rules: Mapping[str, Rule], nodes: Mapping[str, Node]) -> None:
    """Drip item names are unique across the site, and ``unlocked(item)`` names one of them."""
    owner: dict[str, tuple[str, str]] = {}
    for rule in rules.values():
        for index, item in enumerate(rule.drip.items if rule.drip else ()):
            other, _ = owner.setdefault(item.name.casefold(), (rule.name, item.name))
            if other != rule.name:
                raise nodes[rule.name].fail(
                    f"the drip of rule {other!r} has an item named {item.name!r} too; "
                    "unlocked(item) must name one item",
                    "drip",
                    "items",
                    index,
                    "name",
                )
    for rule in rules.values():
        wanted = rule.trigger.args.get("item") if rule.trigger.kind == "unlocked" else None
        if wanted is not None and str(wanted).casefold() not in owner:
            known = ", ".join(name for _, name in owner.values()) or "none: no rule has a drip"
            raise nodes[rule.name].fail(
                f"unlocked({wanted!r}) names no drip item (items: {known})", "trigger"
            )


def _no_name() -> str:
    raise ValueError("every rule needs a name: letters, digits, '-', '_' and '.'")


def _trigger(node: Node, terms: Terms) -> Trigger:
    raw = node.value
    if isinstance(raw, str):
        kind, args = _trigger_text(node, raw)
    elif isinstance(raw, dict) and isinstance(raw.get("on"), str):
        kind, args = raw["on"], {k: v for k, v in raw.items() if k != "on"}
    else:
        raise node.fail(
            'write the trigger as "tag_applied(\'Member\')" or { on = "tag_applied", tag = "Member" }'
        )
    if kind not in TRIGGERS:
        raise node.fail(f"unknown trigger {kind!r} (known triggers: {', '.join(TRIGGERS)})")
    required, optional = TRIGGERS[kind].required, TRIGGERS[kind].optional
    for extra in args:
        if extra not in required + optional:
            raise node.fail(f"trigger {kind!r} takes no argument {extra!r}", extra)
    for missing in required:
        if missing not in args:
            raise node.fail(f"trigger {kind!r} needs the argument {missing!r}", missing)
    checked = {
        name: (
            node.at(name, value)
            if isinstance(raw, dict)
            else replace(node, value=value, shown=(*node.label, name))
        ).check(partial(_trigger_arg, kind, terms, name))
        for name, value in args.items()
    }
    if kind == "credits_expiring":
        checked.setdefault("within", DEFAULT_EXPIRING_WITHIN)
    return Trigger(kind, checked)


def _trigger_text(node: Node, raw: str) -> tuple[str, dict[str, Any]]:
    match = _TRIGGER_TEXT.fullmatch(raw)
    if match is None:
        raise node.fail(f"not a trigger: {raw!r} (write it like \"tag_applied('Member')\")")
    kind, inner = match.group(1), match.group(2)
    if kind not in TRIGGERS:
        raise node.fail(f"unknown trigger {kind!r} (known triggers: {', '.join(TRIGGERS)})")
    values = [v.strip().strip("'\"") for v in inner.split(",")] if inner and inner.strip() else []
    names = TRIGGERS[kind].names
    if len(values) > len(names):
        raise node.fail(
            f"trigger {kind!r} takes at most {len(names)} argument(s), got {len(values)}"
        )
    return kind, dict(zip(names, values, strict=False))


def _trigger_arg(kind: str, terms: Terms, name: str, value: Any) -> Any:
    if name == "within":
        return vocab.duration(value.strip() if isinstance(value, str) else value)
    if name == "value":
        number = _number(value)
        if number is None:
            raise ValueError(f"{kind} needs a number to cross, got {value!r}")
        return number
    if name == "tag":
        return terms.tag(value)
    if name == "field":
        return vocab.field_name(value.strip() if isinstance(value, str) else value)
    if name == "item":
        return vocab.name(value.strip() if isinstance(value, str) else value, "a drip item's name")
    return vocab.text(value, name, vocab.MAX_TEXT).strip()


def _conditions(node: Node) -> str | None:
    raw = node.value
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise node.fail("must be a condition text like \"has_tag('Member')\"")
    try:
        compile_condition(raw)
    except ConditionSyntaxError as exc:
        raise node.fail(str(exc)) from None  # its message starts with the column
    return raw


def _steps(node: Node, terms: Terms, *, allow_empty: bool) -> tuple[Step, ...]:
    steps = tuple(
        load_step(item, terms, "rule")
        for item in node.elements('a list of steps like { do = "credit", amount = 50 }')
    )
    if not steps and not allow_empty:
        raise node.fail('must list at least one step, like { do = "credit", amount = 50 }')
    return steps


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value.strip())
        except ValueError:
            return None
    return None
