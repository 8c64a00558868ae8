"""CLI commands for authors' tools: ``lsp`` (a language server on stdio) and ``schema`` (the
registry as JSON for other editors). Both load the site as ``check`` does."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shortcodes.commands import guarded


def add_commands(sub: Any) -> None:
    """Add ``lsp`` and ``schema`` to the CLI."""
    for name, handler, text in (
        ("lsp", run_lsp, "run the shortcodes language server on stdin/stdout"),
        ("schema", run_schema, "print the shortcode registry (names, attributes, types, "
                               "allowed values) as JSON"),
    ):  # fmt: skip
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument(
            "--site", type=Path, default=Path("site"), metavar="DIR", help="the site folder"
        )
        command.add_argument(
            "--themes", type=Path, default=Path("themes"), metavar="DIR",
            help="the folder holding the site's theme (default: themes)",
        )  # fmt: skip
        command.set_defaults(handler=guarded(handler))


def run_lsp(args: argparse.Namespace) -> int:
    """Serve LSP on stdio until the client says exit."""
    from shortcodes.host.lsp import build_server

    build_server(args.site, args.themes).start_io()
    return 0


def run_schema(args: argparse.Namespace) -> int:
    """Print the site's registry schema (its configuration must load)."""
    from shortcodes.host.pages import PageStore
    from shortcodes.host.sitecheck import SiteFacts, site_environment, site_schema
    from shortcodes.membership.config import load_config

    config = load_config(args.site)
    env, theme = site_environment(config.host, args.themes)
    facts = SiteFacts.of(config.host, theme, PageStore(config.host.pages_dir, env))
    print(json.dumps(site_schema(env, facts), indent=2, sort_keys=True))
    return 0
