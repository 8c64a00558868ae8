"""Store test fixtures: every store test runs on SQLite and on PostgreSQL, like MarkupSafe's two
implementations.

The ``backend`` fixture is parametrized ``["sqlite", "postgresql"]``. SQLite tests get a copy of
a migrated template file; PostgreSQL tests get this xdist worker's own schema (created and
migrated once per session, emptied before each test). PostgreSQL is found through
``SHORTCODES_TEST_PG_URL``; without it those cases skip, unless ``SHORTCODES_REQUIRE_PG=1``
(CI), where they fail. Every test's store must still verify when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from shortcodes.cli import main
from shortcodes.membership.actionsets import SiteActions
from shortcodes.membership.config import parse_config
from shortcodes.store import Store
from shortcodes.store import schema as db
from tests.support.backends import empty_database_url, verified_store, worker_schema
from tests.support.clock import MovableClock

SITE_TOML = """\
[site]
name = "Test site"          # other parts of the product own other sections

[credits]
fields = ["_Credits", "_Points"]

[tags]
"Owns Course B" = "product"
"Owns Course C" = "product"
"Lock Course B" = "lock"
"Gold" = "membership"
"Trial" = "access"
"Borrowed Guide" = "access"
"Lock Guide" = "lock"

[actionsets.buy-course-b]
title = "Course B"
params.cost = { type = "int", default = 50 }
params.tag = { type = "tag", default = "Owns Course B" }
owns = "$tag"
steps = [
  { do = "debit", field = "_Credits", amount = "$cost" },
  { do = "apply_tag", tag = "$tag" },
  { do = "send_email", template = "purchase" },
]

[actionsets.buy-item]
title = "Snack"
params.cost = { type = "int", default = 50 }
steps = [
  { do = "debit", amount = "$cost" },
  { do = "send_email", template = "receipt" },
]

[actionsets.borrow-guide]
title = "The Guide"
owns = "Borrowed Guide"
steps = [
  { do = "debit", amount = 1 },
  { do = "apply_tag", tag = "Borrowed Guide" },
  { do = "grant", tag = "Lock Guide", for = "14d" },
]

[actionsets.return-guide]
title = "The Guide"
requires = "Borrowed Guide"
blocked_by = ["Lock Guide"]
refused = "You can return {title} once its lock ends"
message = "Returned {title}: {balance} credits"
steps = [
  { do = "remove_tag", tag = "Borrowed Guide" },
  { do = "credit", amount = 1 },
]

[actionsets.everything]
title = "Everything"
params.cost = 30
message = "Done {title}: {balance} left after paying {cost}"
steps = [
  { do = "debit", field = "_Credits", amount = "$cost" },
  { do = "credit", field = "_Points", amount = 5 },
  { do = "apply_tag", tag = "Gold" },
  { do = "grant", tag = "Trial", for = "14d" },
  { do = "set_field", field = "LastPurchase", value = "everything" },
  { do = "remove_tag", tag = "Lock Course B" },
  { do = "send_email", template = "welcome", subject = "Welcome" },
  { do = "webhook", url = "https://crm.example.com/hook", event = "purchase" },
  { do = "redirect", url = "/thanks" },
]
"""


@pytest.fixture(scope="session")
def site() -> SiteActions:
    """The test site's credit fields, tags and actionsets."""
    return parse_config(SITE_TOML, "site.toml").actions


@pytest.fixture(scope="session")
def site_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test site's configuration as a file, for the CLI and child processes."""
    path = tmp_path_factory.mktemp("site") / "site.toml"
    path.write_text(SITE_TOML, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[tuple[Engine, str]]:
    """An engine on this worker's own store schema and the URL selecting it."""
    yield from worker_schema("store")


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty, migrated database of the backend under test."""
    return empty_database_url(backend, request, tmp_path, db.metadata.sorted_tables)


@pytest.fixture
def store(db_url: str, site: SiteActions, clock: MovableClock) -> Iterator[Store]:
    """A store with the test site's tags created; its ledger must verify when the test ends."""
    yield from verified_store(db_url, site, clock)


#: Runs the CLI on the test database: (exit code, stdout, stderr).
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(db_url: str, site_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli("credits", "add", ...)`` runs the CLI on the test database: (exit code, out, err)."""

    def run(*argv: str) -> tuple[int, str, str]:
        command = [*argv, "--database-url", db_url, "--site", str(site_file)]
        command += ["--instance", str(tmp_path / "instance")]
        try:
            code = main(command)
        except SystemExit as exc:  # argparse refuses bad usage with exit 2
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    assert run("db", "upgrade")[0] == 0
    return run
