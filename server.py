"""The host entry point: ``create_app()`` for WSGI servers, ``python server.py`` for a laptop.

``python server.py`` and ``flask --app server run`` serve the site in ``./site`` (the demo site when
run from the repository root) on embedded SQLite (``./instance/shortcodes.db``, created, migrated
and seeded on first run). ``python server.py`` (what ``./dev serve`` runs) also runs the automation
worker in a thread of the same process, so drips, emails and monthly credits happen on a laptop;
``--no-worker`` leaves that to ``python -m shortcodes worker``, as production does. Set ``SHORTCODES_DATABASE_URL`` for PostgreSQL and run
``gunicorn 'server:create_app()'`` in production; see ``docs/deployment.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any

from flask import Flask

from shortcodes.automations.worker import run_beside
from shortcodes.errors import SettingsError, ShortcodeError
from shortcodes.host.app import create_app as _create_app

__all__ = ["create_app", "main"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The Flask app for the demo site, or for the site and database ``config`` names."""
    return _create_app(config)


def main(argv: list[str] | None = None) -> None:
    """Serve the site with Flask's development server."""
    parser = argparse.ArgumentParser(description="Serve the shortcodes demo site.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on")
    parser.add_argument("--debug", action="store_true", help="reload on code changes")
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="do not run the automation worker in this process (run `python -m shortcodes worker`)",
    )
    args = parser.parse_args(argv)
    try:
        app = create_app()
    except (SettingsError, ShortcodeError) as exc:
        # The operator's mistake (no site here, a bad site.toml or theme): one line, no traceback.
        sys.exit(f"error: {exc}")
    print(f" * Demo site: http://{args.host}:{args.port}/  (logins are listed in README.md)")
    # With --debug the reloader runs the app in a child process: only that one gets a worker.
    if not args.no_worker and (not args.debug or os.environ.get("WERKZEUG_RUN_MAIN") == "true"):
        state = app.extensions["shortcodes"]
        run_beside(state.store, state.automations, app.config["INSTANCE_PATH"])
        print(" * Automation worker: running in this process (--no-worker to run it apart)")
    app.run(host=args.host, port=args.port, debug=args.debug, threaded=True)


if __name__ == "__main__":
    main()
