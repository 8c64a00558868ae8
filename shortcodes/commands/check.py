"""CLI command ``check``: validate a site's whole configuration as the host would load it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from shortcodes.errors import ConfigError
from shortcodes.membership.config import load_config


def add_commands(sub: Any) -> None:
    """Add ``check`` to the CLI."""
    check = sub.add_parser(
        "check",
        help="validate the site configuration (site.toml)",
        description="Validate site.toml as the host loads it; print FILE:LINE:COL: error: "
        "MESSAGE and exit 1 on a problem, exit 0 when it is clean (FILE:LINE:COL: warning: "
        "lines do not change the exit status).",
    )
    check.add_argument(
        "--site",
        type=Path,
        default=Path("site"),
        metavar="DIR",
        help="the site folder (default: site)",
    )
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Load the configuration; report the first problem, or a summary when there is none."""
    try:
        config = load_config(args.site)
    except ConfigError as exc:
        print(exc.format(), file=sys.stderr)
        return 1
    for warning in config.warnings:
        print(warning.format("warning"), file=sys.stderr)
    actions, automations = config.actions, config.automations
    print(
        f"{config.file}: ok: {len(actions.tags)} tags, {len(actions.actionsets)} actionsets, "
        f"{len(config.host.products)} products, {len(automations.rules)} rules"
    )
    return 0
