"""Actionset definitions: load and validate what a button may run, from the site's ``site.toml``.

The site declares its credit fields, its tags and its actionsets; visitors never do. Loading
checks every key, step and parameter and fails with an :class:`ActionsetConfigError` that names
the file, the line where it can be found, and the key (``actionsets.buy-b.steps[1].amount``).
Running is the store's job (``shortcodes.store.runner``); this module only describes.

```toml
[credits]
fields = ["_Credits"]

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
A value written ``"$name"`` is the parameter ``name``, bound by the button or defaulted.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from shortcodes.errors import ShortcodeError

ParamType = str  # "int" | "tag" | "str"
PARAM_TYPES = ("int", "tag", "str")
MAX_AMOUNT = 10**12
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DURATION = re.compile(r"^\s*([0-9]+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# A line that starts a step: an inline table in the steps array, a [[...steps]] table, a "do =".
_STEP_START = re.compile(r"^\s*(\{|\[\[)|\bdo\s*=")
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


class ActionsetConfigError(ShortcodeError):
    """A site configuration the store cannot run: names the file, line (when known) and key."""

    def __init__(self, message: str, *, file: str, key: str = "", line: int | None = None) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")
        self.file = file
        self.key = key
        self.line = line
        self.reason = message


class ActionsetParamError(ShortcodeError):
    """Parameters a button bound that the actionset does not accept (``cost="fifty"``)."""


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to an actionset parameter, written ``"$name"`` in site.toml."""

    name: str


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter a button may bind: its type and default (None means the button must bind it)."""

    name: str
    type: ParamType
    default: int | str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One step of an actionset: its kind and its arguments (literals or :class:`Ref`)."""

    kind: str
    args: Mapping[str, Any]


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
                bound[name] = _convert(self.name, param, given[name])
            elif param.default is not None:
                bound[name] = param.default
            else:
                raise ActionsetParamError(f"actionset {self.name!r} needs the parameter {name!r}")
        return bound


@dataclass(frozen=True, slots=True)
class SiteActions:
    """What the store needs from the site: credit fields, declared tags, actionsets."""

    credit_fields: tuple[str, ...] = ("_Credits",)
    tags: Mapping[str, str] = field(default_factory=dict)
    actionsets: Mapping[str, Actionset] = field(default_factory=dict)
    file: str = "<defaults>"


def _convert(action: str, param: Param, value: Any) -> int | str:
    if param.type == "int":
        text = (
            str(value).strip()
            if isinstance(value, int | str) and not isinstance(value, bool)
            else ""
        )
        if not (text.isdigit() and text.isascii()) or int(text) > MAX_AMOUNT:
            raise ActionsetParamError(
                f"parameter {param.name!r} of {action!r} must be a whole number of credits "
                f"from 0 to {MAX_AMOUNT}, got {value!r}"
            )
        return int(text)
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ActionsetParamError(
            f"parameter {param.name!r} of {action!r} needs a text value, got {value!r}"
        )
    return value.strip()


def parse_duration(text: str) -> timedelta:
    """``"14d"``, ``"24h"``, ``"30m"``, ``"90s"``, ``"2w"`` as a timedelta (positive)."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"a duration is a positive number and a unit s/m/h/d/w, like '14d', got {text!r}"
        )
    try:
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        raise ValueError(f"the duration {text!r} is too long") from None


def read_site_file(
    path: str | Path, error: type[ActionsetConfigError] = ActionsetConfigError
) -> str:
    """The text of a site.toml file; an unreadable one is ``error`` naming the file."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read the site configuration: {exc.strerror}", file=str(path)) from exc


def load_site_actions(path: str | Path) -> SiteActions:
    """Read and validate ``site.toml`` (a missing file is an error naming it)."""
    return parse_site_actions(read_site_file(path), str(path))


def parse_site_actions(text: str, file: str = "site.toml") -> SiteActions:
    """Validate the ``[credits]``, ``[tags]`` and ``[actionsets]`` sections of a site.toml text.

    Other sections belong to other parts of the product and are left alone.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        pos = _TOML_POS.search(str(exc))
        message = _TOML_POS.sub("", str(exc)).strip()
        line = int(pos.group(1)) if pos else None
        raise ActionsetConfigError(f"not valid TOML: {message}", file=file, line=line) from exc
    return _Loader(text, file).load(data)


class _Loader:
    """Walks the parsed TOML once, raising the first problem with its key and line."""

    def __init__(self, text: str, file: str) -> None:
        self.lines = text.splitlines()
        self.file = file
        self.credit_fields: tuple[str, ...] = ("_Credits",)
        self.tags: dict[str, str] = {}

    def fail(
        self, key: str, message: str, needle: str | None = None, after: int = 0
    ) -> ActionsetConfigError:
        """The error for ``key``, at the first line from ``after`` that mentions ``needle``."""
        return ActionsetConfigError(message, file=self.file, key=key, line=self.find(needle, after))

    def find(self, needle: str | None, after: int = 0) -> int | None:
        """1-based number of the first line at or after ``after`` containing ``needle``."""
        if not needle:
            return after or None
        for number in range(max(after, 1), len(self.lines) + 1):
            if needle in self.lines[number - 1]:
                return number
        return after or None

    def header(self, name: str) -> int:
        """The line where actionset ``name`` starts (its table header or dotted key), or 0."""
        for pattern in (
            f"actionsets.{name}",
            f'actionsets."{name}"',
            f"[{name}]",
            f'"{name}"',
            name,
        ):
            found = self.find(pattern)
            if found:
                return found
        return 0

    def load(self, data: Mapping[str, Any]) -> SiteActions:
        self.credit_fields = self.load_credits(data.get("credits", {}))
        self.tags = self.load_tags(data.get("tags", {}))
        raw = data.get("actionsets", {})
        if not isinstance(raw, dict):
            raise self.fail("actionsets", "must be a table of named actionsets", "actionsets")
        actionsets = {name: self.load_actionset(name, spec) for name, spec in raw.items()}
        return SiteActions(self.credit_fields, self.tags, actionsets, self.file)

    def load_credits(self, raw: Any) -> tuple[str, ...]:
        if not isinstance(raw, dict) or set(raw) - {"fields"}:
            raise self.fail("credits", "must be a table with only the key 'fields'", "credits")
        fields = raw.get("fields", ["_Credits"])
        ok = (
            isinstance(fields, list)
            and fields
            and all(isinstance(f, str) and _FIELD.match(f) for f in fields)
        )
        if not ok:
            raise self.fail(
                "credits.fields",
                "must be a non-empty list of field names like '_Credits'",
                "fields",
            )
        if len({f.casefold() for f in fields}) != len(fields):
            raise self.fail(
                "credits.fields", "names a field twice (names are case-insensitive)", "fields"
            )
        return tuple(fields)

    def load_tags(self, raw: Any) -> dict[str, str]:
        if not isinstance(raw, dict):
            raise self.fail("tags", "must be a table of tag name = category", "tags")
        tags: dict[str, str] = {}
        for name, category in raw.items():
            bad = (
                "," in name
                or not name.strip()
                or name.strip().lstrip("-").isdigit()
                or len(name) > 200
            )
            if bad or not isinstance(category, str):
                raise self.fail(
                    f"tags.{name}",
                    "write a tag as 'name = \"category\"'; a name has no comma and is not a number",
                    name,
                )
            tags[name.strip()] = category
        return tags

    def load_actionset(self, name: str, spec: Any) -> Actionset:
        start = self.header(name)
        key = f"actionsets.{name}"
        if not _NAME.match(name):
            raise self.fail(key, "an actionset name uses letters, digits, '-', '_' and '.'", name)
        if not isinstance(spec, dict):
            raise self.fail(key, "must be a table with 'steps'", name)
        unknown = sorted(set(spec) - set(ACTIONSET_KEYS))
        if unknown:
            expected = ", ".join(ACTIONSET_KEYS)
            problem = f"unknown key (expected {expected})"
            raise self.fail(f"{key}.{unknown[0]}", problem, unknown[0], start)
        params = self.load_params(key, spec.get("params", {}), start)
        steps = self.load_steps(key, spec.get("steps"), params, start)
        owns = (
            None if "owns" not in spec else self.tag_arg(f"{key}.owns", spec["owns"], params, start)
        )
        title, message, refused = spec.get("title", name), spec.get("message"), spec.get("refused")
        for k, v in (("title", title), ("message", message), ("refused", refused)):
            if v is not None and not isinstance(v, str):
                raise self.fail(f"{key}.{k}", "must be text", k, start)
        requires = self.tag_list(f"{key}.requires", spec.get("requires", []), params, start)
        blocked_by = self.tag_list(f"{key}.blocked_by", spec.get("blocked_by", []), params, start)
        return Actionset(name, title, steps, params, owns, message, requires, blocked_by, refused)

    def tag_list(
        self, key: str, raw: Any, params: Mapping[str, Param], start: int
    ) -> tuple[str | Ref, ...]:
        """A tag or a list of tags (names or ``$param``), as a tuple."""
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list):
            raise self.fail(key, "must be a tag name or a list of tag names", key.rsplit(".")[-1])
        line = self.find(key.rsplit(".")[-1], start) or start
        return tuple(
            self.tag_arg(f"{key}[{i}]", item, params, line) for i, item in enumerate(items)
        )

    def load_params(self, key: str, raw: Any, start: int) -> dict[str, Param]:
        if not isinstance(raw, dict):
            raise self.fail(
                f"{key}.params", "must be a table of name = { type, default }", "params", start
            )
        params = {}
        for pname, decl in raw.items():
            pkey = f"{key}.params.{pname}"
            if isinstance(decl, int) and not isinstance(decl, bool):
                decl = {"type": "int", "default": decl}
            if (
                not isinstance(decl, dict)
                or set(decl) - {"type", "default"}
                or decl.get("type") not in PARAM_TYPES
            ):
                raise self.fail(
                    pkey,
                    'declare a parameter as { type = "int" | "tag" | "str", default = ... }',
                    pname,
                    start,
                )
            default = decl.get("default")
            if default is not None:
                default = self.param_default(pkey, pname, decl["type"], default, start)
            params[pname] = Param(pname, decl["type"], default)
        return params

    def param_default(
        self, pkey: str, pname: str, ptype: str, default: Any, start: int
    ) -> int | str:
        try:
            value = _convert("site.toml", Param(pname, ptype), default)
        except ActionsetParamError as exc:
            raise self.fail(f"{pkey}.default", str(exc), pname, start) from exc
        if ptype == "tag":
            self.check_declared_tag(f"{pkey}.default", str(value), start)
        return value

    def load_steps(
        self, key: str, raw: Any, params: Mapping[str, Param], start: int
    ) -> tuple[Step, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail(
                f"{key}.steps",
                'must be a non-empty list of steps like { do = "debit", ... }',
                "steps",
                start,
            )
        step_lines = [
            n
            for n in range(start, len(self.lines) + 1)
            if n and _STEP_START.search(self.lines[n - 1])
        ]
        steps = []
        for index, spec in enumerate(raw):
            line = step_lines[index] if index < len(step_lines) else start
            steps.append(self.load_step(f"{key}.steps[{index}]", spec, params, line))
        return tuple(steps)

    def load_step(self, key: str, spec: Any, params: Mapping[str, Param], line: int) -> Step:
        if not isinstance(spec, dict) or not isinstance(spec.get("do"), str):
            raise self.fail(key, "a step is a table with 'do' naming what it does", None, line)
        kind = spec["do"]
        if kind not in STEP_ARGS:
            known = ", ".join(STEP_ARGS)
            raise self.fail(
                f"{key}.do", f"unknown step {kind!r} (known steps: {known})", kind, line
            )
        required, optional = STEP_ARGS[kind]
        given = {k: v for k, v in spec.items() if k != "do"}
        for extra in sorted(set(given) - set(required) - set(optional)):
            raise self.fail(
                f"{key}.{extra}", f"step {kind!r} takes no argument {extra!r}", extra, line
            )
        for missing in [r for r in required if r not in given]:
            raise self.fail(
                f"{key}.{missing}", f"step {kind!r} needs the argument {missing!r}", kind, line
            )
        args = {
            name: self.step_arg(f"{key}.{name}", kind, name, value, params, line)
            for name, value in given.items()
        }
        if kind in ("debit", "credit") and "field" not in args:
            args["field"] = self.credit_fields[0]
        return Step(kind, args)

    def step_arg(
        self, key: str, kind: str, name: str, value: Any, params: Mapping[str, Param], line: int
    ) -> Any:
        if name == "field":
            return (
                self.set_field_arg(key, value, line)
                if kind == "set_field"
                else self.credit_arg(key, value, line)
            )
        if name == "url":
            return self.url_arg(key, value, line, site_path_ok=kind == "redirect")
        checkers: dict[str, Callable[[str, Any, Mapping[str, Param], int], Any]] = {
            "amount": self.amount_arg,
            "tag": self.tag_arg,
            "for": self.duration_arg,
            "value": self.value_arg,
        }
        checker = checkers.get(name)
        if checker is None:
            return self.text_arg(key, value, params, line)
        return checker(key, value, params, line)

    def ref(
        self, key: str, value: Any, params: Mapping[str, Param], line: int, want: str | None
    ) -> Ref | None:
        if not (isinstance(value, str) and value.startswith("$")):
            return None
        param = params.get(value[1:])
        if param is None:
            raise self.fail(key, f"{value!r} names no declared parameter", value, line)
        if want is not None and param.type != want:
            raise self.fail(
                key, f"{value!r} is a {param.type} parameter; this needs a {want}", value, line
            )
        return Ref(param.name)

    def amount_arg(self, key: str, value: Any, params: Mapping[str, Param], line: int) -> int | Ref:
        ref = self.ref(key, value, params, line, "int")
        if ref is not None:
            return ref
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT:
            message = (
                f"an amount is a whole number of credits from 0 to {MAX_AMOUNT}, got {value!r}"
            )
            raise self.fail(key, message, "amount", line)
        return value

    def credit_arg(self, key: str, value: Any, line: int) -> str:
        credit = {f.casefold(): f for f in self.credit_fields}
        if isinstance(value, str) and value.casefold() in credit:
            return credit[value.casefold()]
        known = ", ".join(self.credit_fields)
        raise self.fail(
            key, f"unknown credit field {value!r} (declared in [credits]: {known})", "field", line
        )

    def set_field_arg(self, key: str, value: Any, line: int) -> str:
        if not isinstance(value, str) or not _FIELD.match(value):
            raise self.fail(key, f"not a field name: {value!r}", "field", line)
        if value.casefold() in {f.casefold() for f in self.credit_fields}:
            raise self.fail(
                key, f"{value!r} is a credit balance: use debit/credit, not set_field", value, line
            )
        if value.casefold() in ("email", "name"):
            raise self.fail(
                key, f"{value!r} belongs to the contact itself and cannot be set", value, line
            )
        return value

    def tag_arg(self, key: str, value: Any, params: Mapping[str, Param], line: int) -> str | Ref:
        ref = self.ref(key, value, params, line, "tag")
        if ref is not None:
            return ref
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"a tag is named by a non-empty text, got {value!r}", "tag", line)
        self.check_declared_tag(key, value.strip(), line)
        return value.strip()

    def check_declared_tag(self, key: str, name: str, line: int) -> None:
        """When the site declares its tags, every tag an actionset names must be among them."""
        if self.tags and name.casefold() not in {t.casefold() for t in self.tags}:
            raise self.fail(key, f"unknown tag {name!r} (not declared in [tags])", name, line)

    def duration_arg(
        self, key: str, value: Any, params: Mapping[str, Param], line: int
    ) -> timedelta:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.fail(key, str(exc), "for", line) from exc

    def value_arg(self, key: str, value: Any, params: Mapping[str, Param], line: int) -> Any:
        ref = self.ref(key, value, params, line, None)
        if ref is not None:
            return ref
        if not isinstance(value, str | int | float | bool):
            raise self.fail(
                key, f"a field value is text, a number or a boolean, got {value!r}", "value", line
            )
        return value

    def url_arg(self, key: str, value: Any, line: int, *, site_path_ok: bool) -> str:
        prefixes = ("https://", "http://", "/") if site_path_ok else ("https://", "http://")
        if (
            not isinstance(value, str)
            or not value.startswith(prefixes)
            or value.startswith("//")
            or " " in value
        ):
            wanted = "an absolute http(s) url" + (" or a site path (/...)" if site_path_ok else "")
            raise self.fail(key, f"needs {wanted}, got {value!r}", "url", line)
        return value

    def text_arg(self, key: str, value: Any, params: Mapping[str, Param], line: int) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(
                key, f"must be a non-empty text, got {value!r}", key.rsplit(".", 1)[-1], line
            )
        return value


#: The keys an actionset table may have.
ACTIONSET_KEYS = (
    "title",
    "params",
    "owns",
    "requires",
    "blocked_by",
    "message",
    "refused",
    "steps",
)

#: Each step kind: (required arguments, optional arguments).
STEP_ARGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "debit": (("amount",), ("field",)),
    "credit": (("amount",), ("field",)),
    "apply_tag": (("tag",), ()),
    "remove_tag": (("tag",), ()),
    "grant": (("tag", "for"), ()),
    "set_field": (("field", "value"), ()),
    "send_email": (("template",), ("subject",)),
    "webhook": (("url",), ("event",)),
    "redirect": (("url",), ()),
}
