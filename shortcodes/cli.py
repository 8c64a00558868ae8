"""The operator CLI: ``python -m shortcodes COMMAND ...`` (also the ``shortcodes`` console script).

Each feature area adds its subcommands from its own module in ``shortcodes.commands`` through an
``add_commands(subparsers)`` function that sets ``handler`` on its parsers; this module only
assembles them, so areas stay out of each other's files.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: The modules that contribute subcommands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "shortcodes.commands.language",
    "shortcodes.commands.check",
    "shortcodes.commands.authoring",
    "shortcodes.commands.store",
    "shortcodes.commands.docs",
    "shortcodes.commands.automations",
    "shortcodes.commands.points",
    "shortcodes.commands.payments",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every area's subcommands."""
    parser = argparse.ArgumentParser(
        prog="shortcodes", description="Render, lint and operate a shortcodes membership site."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code (argparse exits 2 on bad usage)."""
    args = build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return result
