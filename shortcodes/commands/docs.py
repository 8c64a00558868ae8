"""CLI command of the reference: ``docs`` prints the shortcode reference as Markdown."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from shortcodes.errors import ThemeError


def add_commands(sub: Any) -> None:
    """Add ``docs`` to the CLI."""
    docs = sub.add_parser(
        "docs", help="print the shortcode reference (builtins and theme shortcodes) as Markdown"
    )
    docs.add_argument(
        "--theme",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also document the shortcodes of this theme folder (repeatable)",
    )
    docs.add_argument("--no-builtins", action="store_true", help="leave the builtins out")
    docs.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of standard output"
    )
    docs.set_defaults(handler=run_docs)


def run_docs(args: argparse.Namespace) -> int:
    """Build an environment (builtins, then each theme) and print its reference."""
    from shortcodes.environment import Environment
    from shortcodes.reference import reference
    from shortcodes.themes import load_theme

    env = Environment(builtins=not args.no_builtins)
    for folder in args.theme:
        try:
            load_theme(env, folder)
        except ThemeError as error:
            print(f"shortcodes docs: {error}", file=sys.stderr)
            return 1
    text = reference(env)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, "utf-8")
    except OSError as error:
        print(f"shortcodes docs: cannot write {args.output}: {error}", file=sys.stderr)
        return 1
    return 0
