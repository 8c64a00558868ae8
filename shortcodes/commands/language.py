"""CLI commands of the language core: ``lint`` pages and ``render`` a page for a contact."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shortcodes.context import Contact, Context, Tag


def add_commands(sub: Any) -> None:
    """Add ``lint`` and ``render`` to the CLI."""
    lint = sub.add_parser("lint", help="check pages for shortcode problems")
    lint.add_argument(
        "files", nargs="+", type=Path, metavar="FILE", help="pages to lint (Markdown or HTML)"
    )
    lint.set_defaults(handler=run_lint)
    render = sub.add_parser("render", help="render a page to standard output")
    render.add_argument("file", type=Path, metavar="FILE", help="the page to render")
    render.add_argument(
        "--contact", type=Path, metavar="CONTACT.json", help="render as this contact"
    )
    render.add_argument("--strict", action="store_true", help="fail on page errors")
    render.set_defaults(handler=run_render)


def _environment(strict: bool = False) -> Any:
    from shortcodes.environment import Environment

    return Environment(strict=strict)


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SystemExit(f"shortcodes: cannot read {path}: {error}") from error


def run_lint(args: argparse.Namespace) -> int:
    """Print ``file:line:col: severity: message`` and a caret for each problem; 1 on errors."""
    env = _environment()
    errors = 0
    for path in args.files:
        for problem in env.lint(_read(path), str(path)):
            print(problem.format())
            errors += problem.severity == "error"
    return 1 if errors else 0


def contact_from_json(path: Path) -> Contact:
    """Read a contact file: {"id": 7, "email": ..., "tags": [[123, "Name"], ...], "fields": {...}}."""
    try:
        data = json.loads(_read(path))
        tags = [
            Tag(int(t[0]), str(t[1])) if isinstance(t, list) else Tag(int(t["id"]), str(t["name"]))
            for t in data.get("tags", [])
        ]
        return Contact(
            int(data["id"]), str(data.get("email", "")), tags, dict(data.get("fields", {}))
        )
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
        raise SystemExit(
            f"shortcodes: {path} is not a contact file ({type(error).__name__}: {error}); expected "
            '{"id": 7, "email": "ann@example.com", "tags": [[123, "Gold"]], "fields": {"_Credits": 60}}'
        ) from error


def run_render(args: argparse.Namespace) -> int:
    """Render one page for an anonymous visitor or the contact in ``--contact``."""
    from shortcodes.errors import ShortcodeSyntaxError

    contact = contact_from_json(args.contact) if args.contact else None
    env = _environment(args.strict)
    try:
        html = env.render(_read(args.file), Context(contact=contact))
    except ShortcodeSyntaxError as error:
        print(f"{args.file}:{error.problem.format().split(':', 1)[1]}", file=sys.stderr)
        return 1
    sys.stdout.write(str(html))
    return 0
