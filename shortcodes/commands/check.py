"""CLI command ``check``: the whole site as the host would load and serve it.

The configuration first (``site.toml``: its first error stops the check, as it stops the host),
then the theme and every page (:mod:`shortcodes.host.sitecheck`). ``--format text`` prints
``FILE:LINE:COL: severity: message`` lines on stderr and a summary on stdout; ``--format json``
prints one JSON document on stdout. Exit 1 on any error; warnings do not change the status.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shortcodes.errors import ConfigError
from shortcodes.host.sitecheck import Finding, check_site, page_files
from shortcodes.membership.config import load_config


def add_commands(sub: Any) -> None:
    """Add ``check`` to the CLI."""
    check = sub.add_parser(
        "check",
        help="check the site: configuration, theme and every page",
        description="Check site.toml, the theme and every page (front matter, shortcodes, "
        "attribute types, and values that must exist: actionsets, tags, products, credit "
        "fields, local URLs). Prints FILE:LINE:COL: severity: MESSAGE; exit 1 on an error.",
    )
    check.add_argument(
        "--site",
        type=Path,
        default=Path("site"),
        metavar="DIR",
        help="the site folder (default: site)",
    )
    check.add_argument(
        "--themes",
        type=Path,
        default=Path("themes"),
        metavar="DIR",
        help="the folder holding the site's theme (default: themes)",
    )
    check.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text lines (default) or one JSON document on stdout",
    )
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Check the site; print the findings; 1 if any is an error."""
    try:
        config = load_config(args.site)
    except ConfigError as exc:
        return _report(args, [_config_finding(exc, "error")], None)
    findings = [_config_finding(w, "warning") for w in config.warnings]
    findings.extend(check_site(config.host, args.themes))
    actions = config.actions
    summary = {
        "file": config.file,
        "tags": len(actions.tags),
        "actionsets": len(actions.actionsets),
        "products": len(config.host.products),
        "rules": len(config.automations.rules),
        "pages": len(page_files(config.host.pages_dir)),
    }
    return _report(args, findings, summary)


def _config_finding(exc: ConfigError, severity: str) -> Finding:
    message = f"{exc.key}: {exc.reason}" if exc.key else exc.reason
    return Finding(exc.file, exc.line, exc.column, severity, message)


def _report(
    args: argparse.Namespace, findings: list[Finding], summary: dict[str, Any] | None
) -> int:
    errors = sum(f.severity == "error" for f in findings)
    if args.format == "json":
        document = {
            "ok": errors == 0,
            "errors": errors,
            "warnings": len(findings) - errors,
            "problems": [f.as_dict() for f in findings],
            "summary": summary,
        }
        print(json.dumps(document, indent=2))
        return 1 if errors else 0
    for finding in findings:
        line = finding.format()
        if not finding.line:  # a file that could not be read has no position
            line = line.replace(f"{finding.file}:0:0:", f"{finding.file}:", 1)
        print(line, file=sys.stderr)
    if summary is not None and not errors:
        print(
            f"{summary['file']}: ok: {summary['tags']} tags, {summary['actionsets']} actionsets, "
            f"{summary['products']} products, {summary['rules']} rules, {summary['pages']} pages"
        )
    return 1 if errors else 0
