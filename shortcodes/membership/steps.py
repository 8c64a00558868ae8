"""The step registry: every step kind a button's actionset or an automation rule can run.

Each kind is defined once, as a :class:`StepKind`: its arguments (each with its vocabulary
check and the parameter type a ``"$param"`` reference to it must have), the contexts that allow
it (``redirect`` needs a visitor; ``wait``, ``remove_tag_after`` and the loyalty points steps
need the automation worker), and what it does inside the caller's transaction. What a step does goes
through :class:`StepRun`, the few operations that differ between a button's run (the store's
runner) and a rule's run (the automations executor): how a ledger change, a queued message and a
delayed step are recorded. A new step kind is one entry in :data:`STEPS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from shortcodes.context import Tag
from shortcodes.membership import vocabulary as vocab
from shortcodes.membership.source import Node
from shortcodes.store import contacts
from shortcodes.store.session import Tx

Where = Literal["actionset", "rule"]
#: An event a step can cause: its kind and the tag or field it names ("" when it names none).
Effect = tuple[str, str]
ParamType = Literal["int", "tag", "str"]
AWARD_TARGETS = ("contact", "referred", "both")


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to an actionset parameter, written ``"$name"`` in site.toml."""

    name: str


@dataclass(frozen=True, slots=True)
class Terms:
    """What the site declares that step arguments are checked against."""

    credit_fields: tuple[str, ...] = ("_Credits",)
    tags: Mapping[str, str] = field(default_factory=dict)

    def tag(self, value: Any) -> str:
        """A tag name that, when the site declares its tags, is one of them."""
        name = vocab.tag_name(value)
        if self.tags and name.casefold() not in {t.casefold() for t in self.tags}:
            raise ValueError(f"unknown tag {name!r} (not declared in [tags])")
        return name


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of a step kind: its check, whether it is required, and what parameter
    type a ``"$param"`` reference to it must have (None: any type; "none": no reference)."""

    name: str
    check: Callable[[Terms, Any], Any]
    required: bool = True
    ref: ParamType | Literal["any", "none"] = "none"


@dataclass(frozen=True, slots=True)
class Step:
    """A validated step: its kind and its arguments (literals, or :class:`Ref` in actionsets)."""

    kind: str
    args: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The step as stored with a rule run: ``{"do": kind, ...}`` with durations as text."""
        return {"do": self.kind, **{k: _jsonable(v) for k, v in self.args.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        """A step stored by :meth:`to_json` (validated when its rule was loaded)."""
        kind = str(data["do"])
        spec = {arg.name: arg for arg in STEPS[kind].args}
        args = {
            k: vocab.duration(v) if spec.get(k) is not None and spec[k].check is _duration else v
            for k, v in data.items()
            if k != "do"
        }
        return cls(kind, args)


class StepRun(Protocol):
    """What a step needs of the run that performs it (a button's or a rule's)."""

    tx: Tx
    contact_id: int

    @property
    def source(self) -> str:
        """Who changed the contact, e.g. ``actionset:buy-b`` or ``rule:monthly``."""

    def tag(self, name: str) -> Tag:
        """The tag named ``name`` (an unknown tag is a store refusal)."""

    def before_event_writer(self) -> None:
        """Called before a step that records its own events, so events stay in step order."""

    def money(self, field_name: str, delta: int) -> int:
        """Change a balance through the ledger; the balance after."""

    def queue(self, kind: Literal["email", "webhook"], payload: Mapping[str, Any]) -> None:
        """Put a message in the outbox, in the run's transaction."""

    def redirect_to(self, url: str) -> None:
        """Where to send the visitor after the run (buttons only)."""

    def defer_next(self, delay: vocab.Duration) -> None:
        """Run the next step ``delay`` later (rules only)."""

    def schedule(self, step: Step, delay: vocab.Duration) -> datetime:
        """Run ``step`` ``delay`` later, beside the rest of the run (rules only); when."""

    def award(
        self, points: int, to: str, reason: str, wait: vocab.Duration | Literal["now"] | None
    ) -> str:
        """Award loyalty points (rules only), pending for ``wait`` (None: the site's
        ``[loyalty] available_after``); a note of who got them."""

    def remove_points(self, points: int, reason: str) -> str:
        """Take loyalty points back (rules only), never below zero; a note of what was taken."""


@dataclass(frozen=True, slots=True)
class StepKind:
    """A step kind: its arguments, where it is allowed, and what it does."""

    name: str
    args: tuple[Arg, ...]
    perform: Callable[[StepRun, Mapping[str, Any]], str]
    allowed: frozenset[Where] = frozenset({"actionset", "rule"})
    #: True when the store operation records its own events (the run flushes its own first).
    writes_events: bool = False
    #: True when the kind only moves credits, queues messages or defers the next step (the
    #: :class:`StepRun` operations a batch can buffer), so the worker runs many of them with a
    #: few set-based statements; other kinds run one at a time.
    batchable: bool = False
    #: The events a step of this kind can record, each (event kind, what it names), e.g.
    #: ``("tag_applied", "Member")``: what ``check`` follows to find loops between rules.
    emits: Callable[[Mapping[str, Any]], tuple[Effect, ...]] = lambda _args: ()
    #: What the step does, for the reference (``python -m shortcodes docs``, the docs site).
    doc: str = ""
    #: The step as written in site.toml; the tests load every example.
    example: str = ""


# -- argument checks ---------------------------------------------------------------------------


def _amount(terms: Terms, value: Any) -> int:
    return vocab.amount(value)


def _points(terms: Terms, value: Any) -> int:
    return vocab.amount(value, allow_zero=False)


def _credit_field(terms: Terms, value: Any) -> str:
    return vocab.credit_field(value, terms.credit_fields)


def _custom_field(terms: Terms, value: Any) -> str:
    return vocab.custom_field(value, terms.credit_fields)


def _tag(terms: Terms, value: Any) -> str:
    return terms.tag(value)


def _duration(terms: Terms, value: Any) -> vocab.Duration:
    return vocab.duration(value)


def _text(terms: Terms, value: Any) -> str:
    return vocab.text(value, "the value", vocab.MAX_TEXT)


def _http_url(terms: Terms, value: Any) -> str:
    return vocab.http_url(value)


def _url_or_path(terms: Terms, value: Any) -> str:
    return vocab.url_or_path(value)


def _scalar(terms: Terms, value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"a field value is text, a number or a boolean, got {value!r}")


def _delay_or_now(terms: Terms, value: Any) -> vocab.Duration | Literal["now"]:
    return vocab.delay_or_now(value)


def _target(terms: Terms, value: Any) -> str:
    if value in AWARD_TARGETS:
        return str(value)
    raise ValueError(f"must be one of {', '.join(AWARD_TARGETS)}, got {value!r}")


# -- what each kind does -----------------------------------------------------------------------


def _money(sign: int) -> Callable[[StepRun, Mapping[str, Any]], str]:
    def perform(run: StepRun, args: Mapping[str, Any]) -> str:
        if args["amount"] == 0:
            return "nothing to move"  # a free item: entries record changes, and zero is none
        balance = run.money(args["field"], sign * args["amount"])
        return f"{args['field']} = {balance}"

    return perform


def _apply_tag(run: StepRun, args: Mapping[str, Any]) -> str:
    expires = args["for"].after(run.tx.now) if "for" in args else None
    applied = contacts.apply_tag(run.tx, run.contact_id, run.tag(args["tag"]), run.source, expires)
    return f"applied={applied}"


def _remove_tag(run: StepRun, args: Mapping[str, Any]) -> str:
    removed = contacts.remove_tag(run.tx, run.contact_id, run.tag(args["tag"]), run.source)
    return f"removed={removed}"


def _set_field(run: StepRun, args: Mapping[str, Any]) -> str:
    contacts.set_field(run.tx, run.contact_id, args["field"], args["value"])
    return "set"


def _send_email(run: StepRun, args: Mapping[str, Any]) -> str:
    run.queue("email", {"template": args["template"], "subject": args.get("subject", "")})
    return "queued"


def _webhook(run: StepRun, args: Mapping[str, Any]) -> str:
    message = {"url": args["url"], "event": args.get("event", run.source.replace(":", "."))}
    run.queue("webhook", message)
    return "queued"


def _redirect(run: StepRun, args: Mapping[str, Any]) -> str:
    run.redirect_to(args["url"])
    return f"redirect to {args['url']}"


def _wait(run: StepRun, args: Mapping[str, Any]) -> str:
    run.defer_next(args["for"])
    return f"next step after {args['for']}"


def _remove_tag_after(run: StepRun, args: Mapping[str, Any]) -> str:
    run.tag(args["tag"])  # an unknown tag fails now, not when the removal comes due
    due = run.schedule(Step("remove_tag", {"tag": args["tag"]}), args["after"])
    return f"removal scheduled for {due.isoformat()}Z"


def _award_points(run: StepRun, args: Mapping[str, Any]) -> str:
    reason = args.get("reason", run.source.replace(":", " "))
    wait = args.get("available_after")
    # A stored run keeps the wait as text ("14d" or "now"); read it back the same way.
    wait = None if wait is None else vocab.delay_or_now(wait)
    return run.award(args["points"], args.get("to", "contact"), reason, wait)


def _remove_points(run: StepRun, args: Mapping[str, Any]) -> str:
    return run.remove_points(args["points"], args["reason"])


def _emits_tag(kind: str) -> Callable[[Mapping[str, Any]], tuple[Effect, ...]]:
    return lambda args: ((kind, str(args["tag"])),)


def _emits_field(kind: str) -> Callable[[Mapping[str, Any]], tuple[Effect, ...]]:
    return lambda args: ((kind, str(args["field"])),)


def _emits_points(args: Mapping[str, Any]) -> tuple[Effect, ...]:
    return (("points_changed", "points"), ("stage_changed", ""))


def _emits_removal(args: Mapping[str, Any]) -> tuple[Effect, ...]:
    return (("points_changed", "points"),)  # stages follow lifetime points, which never fall


_RULES_ONLY: frozenset[Where] = frozenset({"rule"})

#: Every step kind, in the order the documentation lists them.
STEPS: dict[str, StepKind] = {
    kind.name: kind
    for kind in (
        StepKind(
            "debit",
            (Arg("amount", _amount, ref="int"), Arg("field", _credit_field, required=False)),
            _money(-1),
            batchable=True,
            emits=_emits_field("balance_changed"),
            doc='Take `amount` credits from `field` (the first credit field when left out), through the ledger. A balance never goes below zero: the whole run is refused with "You need N credits; you have M" and nothing is written.',
            example='{ do = "debit", field = "_Credits", amount = 20 }',
        ),
        StepKind(
            "credit",
            (Arg("amount", _amount, ref="int"), Arg("field", _credit_field, required=False)),
            _money(+1),
            batchable=True,
            emits=_emits_field("balance_changed"),
            doc="Add `amount` credits to `field` (the first credit field when left out), through the ledger.",
            example='{ do = "credit", field = "_Credits", amount = 50 }',
        ),
        StepKind(
            "apply_tag",
            (Arg("tag", _tag, ref="tag"),),
            _apply_tag,
            writes_events=True,
            emits=_emits_tag("tag_applied"),
            doc="Apply a tag (a no-op when the contact already holds it).",
            example='{ do = "apply_tag", tag = "Owns Course A" }',
        ),
        StepKind(
            "remove_tag",
            (Arg("tag", _tag, ref="tag"),),
            _remove_tag,
            writes_events=True,
            emits=_emits_tag("tag_removed"),
            doc="Remove a tag (a no-op when the contact does not hold it).",
            example='{ do = "remove_tag", tag = "All Access" }',
        ),
        StepKind(
            "grant",
            (Arg("tag", _tag, ref="tag"), Arg("for", _duration)),
            _apply_tag,
            writes_events=True,
            emits=_emits_tag("tag_applied"),
            doc='Apply a tag that expires `for` later (a duration such as `"14d"` or `"3mo"`); the worker removes it when it expires.',
            example='{ do = "grant", tag = "Lock Field Guide", for = "3d" }',
        ),
        StepKind(
            "set_field",
            (Arg("field", _custom_field), Arg("value", _scalar, ref="any")),
            _set_field,
            writes_events=True,
            emits=_emits_field("field_set"),
            doc="Set a custom contact field (not a credit field: balances change only through the ledger).",
            example='{ do = "set_field", field = "plan", value = "gold" }',
        ),
        StepKind(
            "send_email",
            (Arg("template", _text), Arg("subject", _text, required=False, ref="str")),
            _send_email,
            batchable=True,
            doc="Queue an email in the outbox, in the same transaction; the worker sends it with `emails/<template>.txt` of the site (its first line may be `Subject: ...`).",
            example='{ do = "send_email", template = "purchase", subject = "Thanks for your purchase" }',
        ),
        StepKind(
            "webhook",
            (Arg("url", _http_url), Arg("event", _text, required=False)),
            _webhook,
            doc="Queue a signed JSON POST to `url` in the outbox (`event` names it; by default the actionset or rule that sent it); retried with backoff.",
            example='{ do = "webhook", url = "https://crm.example.com/hooks/purchase", event = "purchase" }',
            batchable=True,
        ),
        StepKind(
            "redirect",
            (Arg("url", _url_or_path),),
            _redirect,
            frozenset({"actionset"}),
            doc="Send the visitor to `url` (a path of the site or an http(s) URL) after the run. Actionsets only: rules run without a visitor.",
            example='{ do = "redirect", url = "/courses/course-a" }',
        ),
        StepKind(
            "wait",
            (Arg("for", _duration),),
            _wait,
            _RULES_ONLY,
            doc="Run the next steps of the rule `for` later. Rules only: the worker keeps the rest of the run until it is due.",
            example='{ do = "wait", for = "1d" }',
            batchable=True,
        ),
        StepKind(
            "remove_tag_after",
            (Arg("tag", _tag), Arg("after", _duration)),
            _remove_tag_after,
            _RULES_ONLY,
            emits=_emits_tag("tag_removed"),
            doc="Schedule the removal of a tag `after` a duration, beside the rest of the run. Rules only.",
            example='{ do = "remove_tag_after", tag = "Course C Access", after = "4mo" }',
        ),
        StepKind(
            "award_points",
            (
                Arg("points", _points),
                Arg("to", _target, required=False),
                Arg("reason", _text, required=False),
                Arg("available_after", _delay_or_now, required=False),
            ),
            _award_points,
            _RULES_ONLY,
            emits=_emits_points,
            doc='Award loyalty points to the contact, to the contact they referred, or to both (`to`, on a `referral_made` or `referral_approved` trigger). They stay pending for `available_after` (a duration, or `"now"` for points available at once; by default `[loyalty] available_after`), then the worker makes them available. Rules only.',
            example='{ do = "award_points", points = 100, reason = "first purchase", available_after = "14d" }',
        ),
        StepKind(
            "remove_points",
            (Arg("points", _points), Arg("reason", _text)),
            _remove_points,
            _RULES_ONLY,
            emits=_emits_removal,
            doc="Take loyalty points back from the contact, with `reason`: first from pending awards, newest first (the points of a returned order never become available), then from the available points as a ledger entry (those expiring first go first). Never below zero: a contact with fewer points loses what they have, and the run's log says how many. Rules only.",
            example='{ do = "remove_points", points = 100, reason = "order returned" }',
        ),
    )
}


def outbox_payload(
    message: Mapping[str, Any],
    contact_id: int,
    email: str,
    balances: Mapping[str, int],
    origin: Mapping[str, Any],
) -> dict[str, Any]:
    """The one shape of a queued email or webhook: the step's own keys (``template`` and
    ``subject``, or ``url`` and ``event``), the contact, its balances in every credit field, and
    what queued it (``action``/``title``/``params`` for a button, ``rule``/``run_id``/``step``/
    ``trigger`` for a rule). Email templates and webhook receivers read these keys."""
    return {
        **message,
        "contact_id": contact_id,
        "email": email,
        "balances": dict(balances),
        **origin,
    }


def perform(run: StepRun, step: Step, args: Mapping[str, Any]) -> str:
    """Do ``step`` (its ``$param`` references already bound in ``args``); a note of what it did."""
    kind = STEPS[step.kind]
    if kind.writes_events:
        run.before_event_writer()
    return kind.perform(run, args)


# -- loading -----------------------------------------------------------------------------------

#: The parameters an actionset declares: name -> type (rules have none).
Params = Mapping[str, ParamType]


def load_step(node: Node, terms: Terms, where: Where, params: Params | None = None) -> Step:
    """Validate one ``{ do = "...", ... }`` table of an actionset or a rule."""
    spec = node.table(what='a step: a table with "do" naming what it does')
    if not isinstance(spec.value.get("do"), str):
        raise node.fail('a step is a table with "do" naming what it does')
    kind = _kind(node.child("do"), where)
    names = {arg.name for arg in kind.args}
    for extra in node.value:
        if extra != "do" and extra not in names:
            raise node.fail(f"step {kind.name!r} takes no argument {extra!r}", extra)
    out: dict[str, Any] = {}
    for arg in kind.args:
        if arg.name in node:
            out[arg.name] = _arg(node.child(arg.name), arg, terms, params or {})
        elif arg.required:
            raise node.fail(f"step {kind.name!r} needs the argument {arg.name!r}", arg.name)
    if kind.name in ("debit", "credit") and "field" not in out:
        out["field"] = terms.credit_fields[0]
    return Step(kind.name, out)


def _kind(node: Node, where: Where) -> StepKind:
    name = node.value
    kind = STEPS.get(name)
    known = [k for k, v in STEPS.items() if where in v.allowed]
    if kind is None:
        raise node.fail(f"unknown step {name!r} (known steps: {', '.join(known)})")
    if where not in kind.allowed:
        why = {
            "redirect": "it needs a visitor, and rules run in the background",
        }.get(name, "it needs the automation worker, which only rules run on")
        article = "an actionset" if where == "actionset" else "a rule"
        raise node.fail(f"{name!r} cannot be a step of {article}: {why}")
    return kind


def _arg(node: Node, arg: Arg, terms: Terms, params: Params) -> Any:
    value = node.value
    if isinstance(value, str) and value.startswith("$") and arg.ref != "none" and params:
        declared = params.get(value[1:])
        if declared is None:
            raise node.fail(f"{value!r} names no declared parameter")
        if arg.ref != "any" and declared != arg.ref:
            wanted = {"int": "an int", "tag": "a tag", "str": "a str"}[arg.ref]
            raise node.fail(f"{value!r} is a {declared} parameter; this needs {wanted} parameter")
        return Ref(value[1:])
    return node.check(lambda raw: arg.check(terms, raw))


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, vocab.Duration) else value
