"""The generated pages of the documentation site: references made from the code at every build.

``docs/hooks.py`` (an MkDocs hook) adds :func:`pages` to each build of the site, so a reference
cannot drift from what the code accepts: the shortcodes come from the registry (builtins and the
default theme), the commands from the CLI's own parsers, the step kinds from the one step registry,
the triggers from the rule loader's table, and the webhook endpoints from the host's operation
table and its signature constants. ``python -m shortcodes docs`` prints the shortcode part alone.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path

from shortcodes.membership.keys import TABLES, Keys

#: Generated page -> the function that writes it (given the repository root).
GENERATED: dict[str, Callable[[Path], str]] = {}


def generated(path: str) -> Callable[[Callable[[Path], str]], Callable[[Path], str]]:
    """Register a page generator under ``path`` (relative to ``docs/``)."""

    def register(make: Callable[[Path], str]) -> Callable[[Path], str]:
        GENERATED[path] = make
        return make

    return register


def pages(root: Path) -> dict[str, str]:
    """Every generated page of the site whose repository root is ``root``: path -> Markdown."""
    return {path: make(root) for path, make in GENERATED.items()}


def _cell(text: object) -> str:
    # A pipe would end a Markdown table cell; a newline would end the row.
    return str(text).replace("|", "\\|").replace("\n", " ")


# -- shortcodes --------------------------------------------------------------------------------


@generated("reference/shortcodes.md")
def shortcodes_page(root: Path) -> str:
    """Every shortcode: the builtins, then the default theme's."""
    from shortcodes.environment import Environment
    from shortcodes.reference import reference
    from shortcodes.themes import load_theme

    env = Environment()
    load_theme(env, root / "themes" / "default")
    intro = (
        "# Shortcode reference\n\n"
        "Generated from the registry at each build of this site (and printed by "
        "`python -m shortcodes docs`): every builtin and every shortcode of the default theme, "
        "with its attributes, their types and defaults, and an example. `lint` and `check` "
        "report an unknown or mistyped attribute with its line and column.\n\n"
    )
    body = reference(env)
    # reference() starts with its own title; this page has the one above.
    return intro + body.split("\n", 1)[1].lstrip("\n") if body.startswith("# ") else intro + body


# -- site.toml ---------------------------------------------------------------------------------

#: Placeholders of table paths, as the examples fill them in.
_EXAMPLE_NAMES = {"<id>": "example", "<name>": "cost"}


def _header(where: str) -> str:
    return where if where.startswith("[[") else f"[{where}]"


def _example_path(where: str) -> str:
    for placeholder, name in _EXAMPLE_NAMES.items():
        where = where.replace(placeholder, name)
    return where


def config_tables() -> list[Keys]:
    """Every declared table of site.toml, each section followed by the tables inside it."""
    # Importing the configuration imports every reader, which declares every table.
    from shortcodes.membership.config import SECTIONS

    order: list[Keys] = []
    for section in SECTIONS:
        inside = [
            keys
            for where, keys in TABLES.items()
            if where in (section, f"[[{section}]]")
            or where.startswith((f"{section}.", f"[[{section}."))
        ]
        # The section's own table first: a table inside it is written after it in TOML.
        order += sorted(inside, key=lambda keys: keys.where not in (section, f"[[{section}]]"))
    missing = set(TABLES) - {keys.where for keys in order} - {SECTIONS.where}
    if missing:  # a table declared outside every section: the page would not show it
        raise ValueError(f"site.toml tables outside any section: {sorted(missing)}")
    return order


def example_toml(keys: Keys) -> str:
    """The example of one table: its header and every key that has an example."""
    lines = [] if not keys.where else [_header(_example_path(keys.where))]
    lines += [f"{name} = {key.example}" for name, key in keys.items() if key.example]
    return "\n".join(lines) + "\n"


def example_site_toml() -> str:
    """One site.toml made of every table's example (the tests load it)."""
    from shortcodes.membership.config import SECTIONS

    return "\n".join(example_toml(keys) for keys in [SECTIONS, *config_tables()])


@generated("reference/site-toml.md")
def config_page(root: Path) -> str:
    """Every section and key of site.toml, from the keys each reader declares."""
    from shortcodes.membership.config import SECTIONS

    lines = [
        "# site.toml",
        "",
        "Generated at each build of this site from the keys each part of the loader declares: "
        "the loader accepts no key that is not on this page. `python -m shortcodes check` "
        "validates a file and prints `FILE:LINE:COL: error: KEY: MESSAGE` for each mistake; the "
        "site refuses to start with the same message.",
        "",
        "## Sections",
        "",
        SECTIONS.doc,
        "",
        *_key_table(SECTIONS),
    ]
    for keys in config_tables():
        lines += [f"## `{_header(keys.where)}`", "", keys.doc, "", *_key_table(keys)]
        lines += ["Example:", "", "```toml", example_toml(keys).rstrip("\n"), "```", ""]
    return "\n".join(lines)


def _literal(default: str) -> str:
    """A default written in TOML as code; one described in words (``the id``) as words."""
    return f"`{default}`" if default[:1] in _TOML_STARTS else default


_TOML_STARTS = frozenset('"[{-0123456789tf')


def _key_table(keys: Keys) -> list[str]:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, key in keys.items():
        default = "required" if key.required else _literal(key.default)
        rows.append(f"| `{name}` | {_cell(key.type)} | {_cell(default)} | {_cell(key.doc)} |")
    return [*rows, ""]


# -- the command line --------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(help, parser) of each subcommand of ``parser``, depth first, in the order --help lists."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield helps.get(name, ""), sub
                yield from _subcommands(sub)


def _usage(parser: argparse.ArgumentParser) -> str:
    # A fixed width, not the terminal's, so every build writes the same page.
    formatter = argparse.HelpFormatter(prog=parser.prog, width=96)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, "")
    return formatter.format_help().strip()


def _argument_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        name = ", ".join(action.option_strings) or (action.metavar or action.dest)
        if not action.help:  # as with config keys: an undocumented argument fails the build
            raise ValueError(f"{parser.prog} {name}: the argument has no help text")
        default = action.default
        shown = "" if default in (None, False, [], argparse.SUPPRESS) else f"`{default}`"
        choices = f" (one of {', '.join(map(str, action.choices))})" if action.choices else ""
        rows.append(
            f"| `{_cell(name)}` | {_cell((action.help or '') + choices)} | {_cell(shown)} |"
        )
    return rows


@generated("reference/cli.md")
def cli_page(root: Path) -> str:
    """Every command of ``python -m shortcodes``, from the CLI's own parsers."""
    from shortcodes.cli import build_parser

    lines = [
        "# Command line",
        "",
        "Generated from the CLI's parsers at each build of this site. Every command is "
        "`python -m shortcodes COMMAND` (or `shortcodes COMMAND` once installed); each reads "
        "`DATABASE_URL`, `SITE_DIR` and the other settings the host reads "
        "(see [Operating](../deployment.md)). Exit status 0 is success, 1 a refusal or "
        "a problem found, 2 a usage error.",
        "",
    ]
    for help_text, parser in _subcommands(build_parser()):
        lines += [f"## `{parser.prog}`", ""]
        if help_text:
            lines += [help_text[0].upper() + help_text[1:] + ".", ""]
        lines += ["```text", _usage(parser), "```", ""]
        rows = _argument_rows(parser)
        if rows:
            lines += ["| argument | meaning | default |", "|---|---|---|", *rows, ""]
    return "\n".join(lines)


# -- automations -------------------------------------------------------------------------------


@generated("reference/steps-and-triggers.md")
def automations_page(root: Path) -> str:
    """Every step kind (from the step registry) and every trigger (from the rule loader)."""
    from shortcodes.automations.rules import TRIGGERS
    from shortcodes.membership.steps import STEPS

    lines = [
        "# Steps and triggers",
        "",
        "Generated from the step registry and the rule loader at each build of this site. An "
        "actionset (what a button runs) and an automation rule are lists of the same steps; "
        "a few need a visitor (actionsets only) or the worker (rules only). `python -m "
        "shortcodes check` refuses a step or trigger that is not listed here, with its line and "
        "column.",
        "",
        "## Steps",
        "",
    ]
    for kind in STEPS.values():
        where = " and ".join(
            sorted("actionsets" if w == "actionset" else "rules" for w in kind.allowed)
        )
        args = ", ".join(f"`{a.name}`" + ("" if a.required else " (optional)") for a in kind.args)
        lines += [f"### `{kind.name}`", "", kind.doc, "", f"Arguments: {args}. In: {where}.", ""]
        lines += ["```toml", f"steps = [{kind.example}]", "```", ""]
    lines += [
        "## Triggers",
        "",
        'A rule\'s `trigger` is written `"kind(arguments)"` or as a table '
        '`{ on = "kind", argument = value }`.',
        "",
    ]
    for name, trigger in TRIGGERS.items():
        args = ", ".join(
            [f"`{a}`" for a in trigger.required] + [f"`{a}` (optional)" for a in trigger.optional]
        )
        lines += [f"### `{name}`", "", trigger.doc, "", f"Arguments: {args or 'none'}.", ""]
        lines += ["```toml", f'trigger = "{trigger.example}"', "```", ""]
    return "\n".join(lines)


# -- webhooks ----------------------------------------------------------------------------------


@generated("reference/webhooks.md")
def webhooks_page(root: Path) -> str:
    """The inbound endpoints with their payloads and signatures, and the outbound deliveries."""
    from shortcodes.host import webhooks
    from shortcodes.host.hookops import OPERATIONS
    from shortcodes.membership.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER

    lines = [
        "# Webhooks",
        "",
        "Generated from the host's webhook operations at each build of this site.",
        "",
        "## Signing (in and out)",
        "",
        f"A request carries `{TIMESTAMP_HEADER}: <unix seconds>` and "
        f'`{SIGNATURE_HEADER}: sha256=<hex>`, the HMAC-SHA256 of `"<timestamp>.<raw body>"` '
        "with the site's webhook secret (`[webhooks] secret`, or `SHORTCODES_WEBHOOK_SECRET`). "
        f"A timestamp more than {webhooks.MAX_AGE} seconds away from the server's clock is "
        f"refused, as is a body over {webhooks.MAX_BODY // 1024} KiB or one that is not a JSON "
        "object. Each body names an `event_id`, claimed in the same transaction as the change: "
        'a retried delivery answers `"duplicate": true` and changes nothing.',
        "",
        "```python",
        "import hashlib, hmac, json, time",
        'body = json.dumps({"event_id": "evt-1", "contact": "ann@example.com", '
        '"tag": "Owns Course A"}).encode()',
        "stamp = str(int(time.time()))",
        'mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)',
        f'headers = {{"{TIMESTAMP_HEADER}": stamp, "{SIGNATURE_HEADER}": "sha256=" + mac.hexdigest()}}',
        "```",
        "",
        'Answers are JSON (`{"error": code, "message": ...}` when refused): `200` with the '
        "result; `400` for a body that is not a JSON object with an `event_id`; `401` for a "
        "missing, stale or wrong signature; `404` for an unknown endpoint or event name; and "
        "for the store's refusals:",
        "",
        "| refusal | status | error |",
        "|---|---|---|",
        *(f"| {kind.__name__} | {status} | `{code}` |" for kind, status, code in webhooks._STATUS),
        "",
        "## Inbound endpoints",
        "",
    ]
    for name, operation in OPERATIONS.items():
        doc = inspect.getdoc(operation) or ""
        lines += [f"### `POST /hooks/{name}`", "", doc, ""]
    lines += [
        "### `POST /hooks/events/<name>`",
        "",
        "Starts the rules whose trigger is `webhook('<name>')` for `contact` (an id or an "
        "email); a name no rule listens to answers 404 `unknown_event`.",
        "",
        "### `POST /hooks/stripe`",
        "",
        "Stripe's own events, verified with the `Stripe-Signature` header and the endpoint "
        "secret (`STRIPE_WEBHOOK_SECRET`); see [Payments](../payments.md).",
        "",
        "## Outbound deliveries",
        "",
        "A `webhook` step queues a POST in the outbox, in the transaction of the run that "
        'made it. The worker sends `{"id", "event", "created_at", "data"}` as JSON, '
        "signed as above with `[automations] webhook_secret`, plus `X-Shortcodes-Delivery: <id>` "
        "so the receiver can drop a repeat. Any non-2xx answer is retried after 30 s, 1 min, "
        "2 min, ... (at most 6 hours apart) until `[automations] max_attempts`; "
        "`python -m shortcodes outbox redeliver ID` queues a dead one again.",
        "",
    ]
    return "\n".join(lines)
