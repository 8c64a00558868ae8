"""Subcommands of the operator CLI, one module per feature area (see ``shortcodes.cli``).

:func:`guarded` is the one error handler every area wraps its handlers in: a refusal the operator
can act on (a store refusal, a bad configuration) prints ``error: ...`` and exits 1 instead of a
traceback. :func:`common_parser` and :func:`settings_of` give every command the same ``--site``,
``--instance`` and ``--database-url`` flags, resolved by the host's own
:func:`~shortcodes.host.settings.resolve_settings`, so the CLI and the host never disagree about
which site, instance folder or database they work on.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path

from shortcodes.errors import ConfigError, SettingsError, StoreError
from shortcodes.host.settings import Settings, resolve_settings

Handler = Callable[[argparse.Namespace], int]

#: What an operator caused and can fix: said in one line, never as a traceback.
REFUSALS: tuple[type[Exception], ...] = (StoreError, ConfigError, SettingsError)


def guarded(handler: Handler) -> Handler:
    """``handler`` printing ``error: MESSAGE`` and returning 1 on a :data:`REFUSALS` error."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except REFUSALS as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


def common_parser() -> argparse.ArgumentParser:
    """The ``--instance``, ``--database-url`` and ``--site`` flags every store command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--instance", help="instance folder (default: SHORTCODES_INSTANCE_PATH, else ./instance)"
    )
    common.add_argument(
        "--database-url",
        help="database URL (default: SHORTCODES_DATABASE_URL, then DATABASE_URL, "
        "else SQLite in the instance folder)",
    )
    common.add_argument(
        "--site",
        type=Path,
        help="site folder or its site.toml (default: SHORTCODES_SITE_DIR, else ./site)",
    )
    return common


def settings_of(args: argparse.Namespace) -> Settings:
    """Site, instance and database for these flags, decided exactly as the host decides them."""
    return resolve_settings(
        {"SITE_DIR": args.site, "INSTANCE_PATH": args.instance, "DATABASE_URL": args.database_url}
    )
