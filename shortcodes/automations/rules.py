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

Every problem raises :class:`RuleConfigError`, whose message names the file, the line, the rule
and the key (``rules.monthly-credits.steps[2].for``). Durations are a whole number and a unit:
``s``, ``m`` (minutes), ``h``, ``d``, ``w``, ``mo`` (calendar months) or ``y``. Steps are kept
as JSON-able dicts (``{"do": "wait", "for": "24h"}``) because a run stores a snapshot of them.
"""

from __future__ import annotations

import calendar
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shortcodes.actionsets import (
    MAX_AMOUNT,
    ActionsetConfigError,
    SiteActions,
    parse_site_actions,
    read_site_file,
)
from shortcodes.conditions import compile_condition
from shortcodes.errors import ConditionSyntaxError

_RULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DURATION = re.compile(r"^\s*(\d{1,6})\s*(mo|s|m|h|d|w|y)\s*$")
_TRIGGER_TEXT = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$", re.S)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

#: Each trigger: (required arguments, optional arguments), in the order the text form takes them.
TRIGGERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "tag_applied": (("tag",), ()),
    "tag_removed": (("tag",), ()),
    "payment_succeeded": ((), ("product",)),
    "payment_failed": ((), ("product",)),
    "refunded": ((), ("product",)),
    "field_above": (("field", "value"), ()),
    "stage_changed": ((), ("stage",)),
    "referral_approved": ((), ()),
    "login": ((), ()),
    "webhook": (("name",), ()),
}

#: Each step: (required arguments, optional arguments).
STEPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "debit": (("amount",), ("field",)),
    "credit": (("amount",), ("field",)),
    "apply_tag": (("tag",), ()),
    "remove_tag": (("tag",), ()),
    "grant": (("tag", "for"), ()),
    "set_field": (("field", "value"), ()),
    "send_email": (("template",), ("subject",)),
    "webhook": (("url",), ("event",)),
    "wait": (("for",), ()),
    "remove_tag_after": (("tag", "after"), ()),
    "award_points": (("points",), ("to", "reason")),
}
AWARD_TARGETS = ("contact", "referred", "both")
RULE_KEYS = ("name", "trigger", "conditions", "steps", "otherwise", "description")
LOYALTY_KEYS = ("available_after", "expire_after", "stages")
AUTOMATION_KEYS = ("smtp", "email_from", "webhook_secret", "max_attempts")
DEFAULT_STAGES: tuple[tuple[str, int], ...] = (("Bronze", 0), ("Silver", 500), ("Gold", 1500))


class RuleConfigError(ActionsetConfigError):
    """A rule, loyalty or automations setting that cannot run; names file, line, rule and key."""


@dataclass(frozen=True, slots=True)
class Duration:
    """A validated duration: fixed seconds, or calendar months (``4mo`` ends on the same day)."""

    text: str
    seconds: int = 0
    months: int = 0

    def after(self, start: datetime) -> datetime:
        """The moment this long after ``start`` (months keep the day, clamped to month end)."""
        if not self.months:
            return start + timedelta(seconds=self.seconds)
        index = start.month - 1 + self.months
        year, month = start.year + index // 12, index % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day)


def parse_duration(text: Any) -> Duration:
    """``"24h"``, ``"14d"``, ``"4mo"``, ``"1y"`` as a :class:`Duration`; ValueError otherwise."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            "a duration is a positive whole number and a unit s, m (minutes), h, d, w, "
            f"mo (months) or y, like '14d' or '4mo'; got {text!r}"
        )
    number, unit = int(match.group(1)), match.group(2)
    if unit in ("mo", "y"):
        return Duration(text.strip(), months=number * (12 if unit == "y" else 1))
    return Duration(text.strip(), seconds=number * _SECONDS[unit])


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
    """A validated rule; ``steps`` and ``otherwise`` are JSON-able step dicts with ``do``."""

    name: str
    trigger: Trigger
    steps: tuple[Mapping[str, Any], ...]
    otherwise: tuple[Mapping[str, Any], ...] = ()
    conditions: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class LoyaltyConfig:
    """Points: how long earned points stay pending, when they expire, the stage thresholds."""

    available_after: Duration = Duration("14d", seconds=14 * 86400)
    expire_after: Duration = Duration("1y", months=12)
    stages: tuple[tuple[str, int], ...] = DEFAULT_STAGES

    def stage_for(self, lifetime: int) -> str:
        """The highest stage whose threshold ``lifetime`` points reach."""
        reached = [name for name, threshold in self.stages if lifetime >= threshold]
        return reached[-1] if reached else ""


@dataclass(frozen=True, slots=True)
class AutomationConfig:
    """Everything automations read from site.toml."""

    rules: Mapping[str, Rule] = field(default_factory=dict)
    loyalty: LoyaltyConfig = field(default_factory=LoyaltyConfig)
    actions: SiteActions = field(default_factory=SiteActions)
    smtp: str = ""
    email_from: str = "no-reply@localhost"
    webhook_secret: str = ""
    max_attempts: int = 8
    file: str = "<defaults>"

    def rules_for(self, kind: str) -> list[Rule]:
        """The rules whose trigger has this kind, in file order."""
        return [r for r in self.rules.values() if r.trigger.kind == kind]


def load_automations(path: str | Path) -> AutomationConfig:
    """Read and validate a site.toml file (the store's sections included)."""
    return parse_automations(read_site_file(path, RuleConfigError), str(path))


def parse_automations(text: str, file: str = "site.toml") -> AutomationConfig:
    """Validate ``[[rules]]``, ``[loyalty]`` and ``[automations]`` of a site.toml text."""
    actions = parse_site_actions(text, file)  # TOML syntax errors are reported there, with a line
    data = tomllib.loads(text)
    return _Loader(text, file, actions).load(data)


class _Loader:
    """Walks the parsed TOML, raising the first problem with the rule, the key and a line."""

    def __init__(self, text: str, file: str, actions: SiteActions) -> None:
        self.lines = text.splitlines()
        self.file = file
        self.actions = actions
        self.line = 0

    def fail(self, key: str, message: str) -> RuleConfigError:
        return RuleConfigError(message, file=self.file, key=key, line=self.line or None)

    def find(self, needle: str) -> int:
        for number, line in enumerate(self.lines, start=1):
            if needle in line:
                return number
        return 0

    def load(self, data: Mapping[str, Any]) -> AutomationConfig:
        settings = self.settings(data.get("automations", {}))
        hooks = data.get("webhooks", {})
        shared = hooks.get("secret") if isinstance(hooks, dict) else None
        if not settings.get("webhook_secret") and isinstance(shared, str):
            settings["webhook_secret"] = shared  # outgoing webhooks sign with the site's secret
        loyalty = self.loyalty(data.get("loyalty", {}))
        raw = data.get("rules", [])
        self.line = self.find("[[rules]]")
        if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
            raise self.fail("rules", "write each rule as a [[rules]] table")
        rules: dict[str, Rule] = {}
        for index, spec in enumerate(raw):
            rule = self.rule(index, spec)
            if rule.name.casefold() in {n.casefold() for n in rules}:
                raise self.fail(f"rules.{rule.name}.name", "another rule has this name")
            rules[rule.name] = rule
        return AutomationConfig(rules, loyalty, self.actions, file=self.file, **settings)

    def settings(self, raw: Any) -> dict[str, Any]:
        self.line = self.find("[automations]")
        if not isinstance(raw, dict):
            raise self.fail("automations", "must be a table")
        for key in raw:
            if key not in AUTOMATION_KEYS:
                raise self.fail(
                    f"automations.{key}", f"unknown key (expected {', '.join(AUTOMATION_KEYS)})"
                )
        out: dict[str, Any] = {}
        for key in ("smtp", "email_from", "webhook_secret"):
            if key in raw:
                if not isinstance(raw[key], str):
                    raise self.fail(f"automations.{key}", "must be text")
                out[key] = raw[key]
        if "smtp" in out and out["smtp"] and not out["smtp"].startswith(("smtp://", "smtps://")):
            raise self.fail(
                "automations.smtp", "write the server as smtp://host:port (or smtps://)"
            )
        if "max_attempts" in raw:
            value = raw["max_attempts"]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 50:
                raise self.fail(
                    "automations.max_attempts",
                    f"must be a whole number from 1 to 50, got {value!r}",
                )
            out["max_attempts"] = value
        return out

    def loyalty(self, raw: Any) -> LoyaltyConfig:
        self.line = self.find("[loyalty]")
        if not isinstance(raw, dict):
            raise self.fail("loyalty", "must be a table")
        for key in raw:
            if key not in LOYALTY_KEYS:
                raise self.fail(
                    f"loyalty.{key}", f"unknown key (expected {', '.join(LOYALTY_KEYS)})"
                )
        defaults = LoyaltyConfig()
        available = self.duration(
            "loyalty.available_after", raw.get("available_after", defaults.available_after.text)
        )
        expire = self.duration(
            "loyalty.expire_after", raw.get("expire_after", defaults.expire_after.text)
        )
        stages = defaults.stages
        if "stages" in raw:
            stages = self.stages(raw["stages"])
        return LoyaltyConfig(available, expire, stages)

    def stages(self, raw: Any) -> tuple[tuple[str, int], ...]:
        ok = (
            isinstance(raw, dict)
            and raw
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in raw.values())
        )
        if not ok:
            raise self.fail(
                "loyalty.stages",
                "write stages as { Bronze = 0, Silver = 500, Gold = 1500 } (points >= 0)",
            )
        ordered = tuple(sorted(raw.items(), key=lambda item: item[1]))
        if len({v for _, v in ordered}) != len(ordered):
            raise self.fail("loyalty.stages", "two stages have the same threshold")
        return ordered

    def duration(self, key: str, value: Any) -> Duration:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None

    def rule(self, index: int, spec: Mapping[str, Any]) -> Rule:
        name = spec.get("name")
        label = name if isinstance(name, str) and name else f"[{index}]"
        self.line = self.find(f'"{name}"') if isinstance(name, str) else 0
        key = f"rules.{label}"
        if not isinstance(name, str) or not _RULE_NAME.match(name):
            raise self.fail(
                f"{key}.name", "every rule needs a name of letters, digits, '-', '_' and '.'"
            )
        for extra in spec:
            if extra not in RULE_KEYS:
                raise self.fail(f"{key}.{extra}", f"unknown key (expected {', '.join(RULE_KEYS)})")
        if "trigger" not in spec:
            raise self.fail(
                f"{key}.trigger",
                "missing: every rule needs a trigger, like \"tag_applied('Member')\"",
            )
        trigger = self.trigger(f"{key}.trigger", spec["trigger"])
        conditions = self.conditions(f"{key}.conditions", spec.get("conditions"))
        if "steps" not in spec:
            raise self.fail(f"{key}.steps", "missing: every rule needs steps")
        steps = self.steps(f"{key}.steps", spec["steps"], allow_empty=False)
        otherwise = self.steps(f"{key}.otherwise", spec.get("otherwise", []), allow_empty=True)
        if otherwise and conditions is None:
            raise self.fail(f"{key}.otherwise", "'otherwise' steps need 'conditions' to be false")
        description = spec.get("description", "")
        if not isinstance(description, str):
            raise self.fail(f"{key}.description", "must be text")
        return Rule(name, trigger, steps, otherwise, conditions, description)

    def trigger(self, key: str, raw: Any) -> Trigger:
        if isinstance(raw, str):
            kind, args = self.trigger_text(key, raw)
        elif isinstance(raw, dict) and isinstance(raw.get("on"), str):
            kind, args = raw["on"], {k: v for k, v in raw.items() if k != "on"}
        else:
            raise self.fail(
                key,
                'write the trigger as "tag_applied(\'Member\')" or { on = "tag_applied", tag = "Member" }',
            )
        if kind not in TRIGGERS:
            raise self.fail(
                key, f"unknown trigger {kind!r} (known triggers: {', '.join(TRIGGERS)})"
            )
        required, optional = TRIGGERS[kind]
        for extra in args:
            if extra not in required + optional:
                raise self.fail(f"{key}.{extra}", f"trigger {kind!r} takes no argument {extra!r}")
        for missing in required:
            if missing not in args:
                raise self.fail(
                    f"{key}.{missing}", f"trigger {kind!r} needs the argument {missing!r}"
                )
        return Trigger(
            kind,
            {name: self.trigger_arg(f"{key}.{name}", kind, name, v) for name, v in args.items()},
        )

    def trigger_text(self, key: str, raw: str) -> tuple[str, dict[str, Any]]:
        match = _TRIGGER_TEXT.match(raw)
        if match is None:
            raise self.fail(
                key, f"not a trigger: {raw!r} (write it like \"tag_applied('Member')\")"
            )
        kind, inner = match.group(1), match.group(2)
        if kind not in TRIGGERS:
            raise self.fail(
                key, f"unknown trigger {kind!r} (known triggers: {', '.join(TRIGGERS)})"
            )
        values = (
            [v.strip().strip("'\"") for v in inner.split(",")] if inner and inner.strip() else []
        )
        names = TRIGGERS[kind][0] + TRIGGERS[kind][1]
        if len(values) > len(names):
            raise self.fail(
                key, f"trigger {kind!r} takes at most {len(names)} argument(s), got {len(values)}"
            )
        return kind, dict(zip(names, values, strict=False))

    def trigger_arg(self, key: str, kind: str, name: str, value: Any) -> Any:
        if name == "value":
            number = _number(value)
            if number is None:
                raise self.fail(key, f"field_above needs a number to cross, got {value!r}")
            return number
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty text, got {value!r}")
        if name == "tag":
            self.check_tag(key, value)
        if name == "field" and not _FIELD.match(value.strip()):
            raise self.fail(key, f"not a field name: {value!r}")
        return value.strip()

    def conditions(self, key: str, raw: Any) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw.strip():
            raise self.fail(key, "must be a condition text like \"has_tag('Member')\"")
        try:
            compile_condition(raw)
        except ConditionSyntaxError as exc:
            raise self.fail(key, f"{exc} (column {exc.column})") from None
        return raw

    def steps(self, key: str, raw: Any, *, allow_empty: bool) -> tuple[Mapping[str, Any], ...]:
        if not isinstance(raw, list) or (not raw and not allow_empty):
            raise self.fail(
                key, 'must be a non-empty list of steps like { do = "credit", amount = 50 }'
            )
        return tuple(self.step(f"{key}[{i}]", spec) for i, spec in enumerate(raw))

    def step(self, key: str, spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict) or not isinstance(spec.get("do"), str):
            raise self.fail(key, "a step is a table with 'do' naming what it does")
        kind = spec["do"]
        if kind == "redirect":
            raise self.fail(f"{key}.do", "'redirect' needs a visitor; rules run in the background")
        if kind not in STEPS:
            raise self.fail(f"{key}.do", f"unknown step {kind!r} (known steps: {', '.join(STEPS)})")
        required, optional = STEPS[kind]
        for extra in spec:
            if extra != "do" and extra not in required + optional:
                raise self.fail(f"{key}.{extra}", f"step {kind!r} takes no argument {extra!r}")
        for missing in required:
            if missing not in spec:
                raise self.fail(f"{key}.{missing}", f"step {kind!r} needs the argument {missing!r}")
        out: dict[str, Any] = {"do": kind}
        for name, value in spec.items():
            if name != "do":
                out[name] = self.step_arg(f"{key}.{name}", kind, name, value)
        if kind in ("debit", "credit") and "field" not in out:
            out["field"] = self.actions.credit_fields[0]
        return out

    def step_arg(self, key: str, kind: str, name: str, value: Any) -> Any:
        if name in ("amount", "points"):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_AMOUNT:
                raise self.fail(
                    key, f"must be a whole number from 1 to {MAX_AMOUNT}, got {value!r}"
                )
            return value
        if name in ("for", "after"):
            return self.duration(key, value).text
        if name == "field":
            return (
                self.credit_field(key, value)
                if kind in ("debit", "credit")
                else self.set_field(key, value)
            )
        if name == "tag":
            if not isinstance(value, str) or not value.strip():
                raise self.fail(key, f"a tag is named by a non-empty text, got {value!r}")
            self.check_tag(key, value)
            return value.strip()
        if name == "value":
            if not isinstance(value, str | int | float | bool):
                raise self.fail(key, f"a field value is text, a number or a boolean, got {value!r}")
            return value
        if name == "url":
            if (
                not isinstance(value, str)
                or not value.startswith(("https://", "http://"))
                or " " in value
            ):
                raise self.fail(key, f"needs an absolute http(s) url, got {value!r}")
            return value
        if name == "to":
            if value not in AWARD_TARGETS:
                raise self.fail(key, f"must be one of {', '.join(AWARD_TARGETS)}, got {value!r}")
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty text, got {value!r}")
        return value

    def credit_field(self, key: str, value: Any) -> str:
        declared = {f.casefold(): f for f in self.actions.credit_fields}
        if isinstance(value, str) and value.casefold() in declared:
            return declared[value.casefold()]
        raise self.fail(
            key,
            f"unknown credit field {value!r} (declared in [credits]: {', '.join(self.actions.credit_fields)})",
        )

    def set_field(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not _FIELD.match(value):
            raise self.fail(key, f"not a field name: {value!r}")
        if value.casefold() in {f.casefold() for f in self.actions.credit_fields} | {
            "email",
            "name",
        }:
            raise self.fail(
                key,
                f"{value!r} cannot be set: credits change by credit/debit, email and name belong to the contact",
            )
        return value

    def check_tag(self, key: str, name: str) -> None:
        tags = self.actions.tags
        if tags and name.strip().casefold() not in {t.casefold() for t in tags}:
            raise self.fail(key, f"unknown tag {name!r} (not declared in [tags])")


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
