"""The operator CLI on both databases: every store command, exit codes, malformed arguments."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from shortcodes.cli import main
from shortcodes.context import Contact
from shortcodes.store import Store
from shortcodes.store import schema as db
from shortcodes.store.migrate import head_revision
from shortcodes.store.throttle import Locked
from tests.store.conftest import Cli
from tests.support.db import dump


def test_db_upgrade_creates_the_schema_and_site_tags_and_is_repeatable(
    tmp_path: Path,
    site_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a database URL, the instance folder's SQLite file is the database."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    instance = tmp_path / "instance"
    args = ["--instance", str(instance), "--site", str(site_file)]
    assert main(["contacts", "show", "a@b.c", *args]) == 1
    assert "run `shortcodes db upgrade` first" in capsys.readouterr().err
    for _ in range(2):
        assert main(["db", "upgrade", *args]) == 0
        expected = f"database at revision {head_revision()}; 7 site tags present"
        assert expected in capsys.readouterr().out
    assert (instance / "shortcodes.db").is_file()


def test_database_url_comes_from_the_environment(
    db_url: str, cli: Cli, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["contacts", "add", "env@example.com"]) == 0
    with Store.from_url(db_url) as store:
        assert store.get_contact("env@example.com").email == "env@example.com"


def test_shortcodes_database_url_comes_before_database_url(
    db_url: str, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The host's variable wins, so host and CLI never pick different databases."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'not-this-one.db'}")
    monkeypatch.setenv("SHORTCODES_DATABASE_URL", db_url)
    assert main(["contacts", "add", "env@example.com"]) == 0
    with Store.from_url(db_url) as store:
        assert store.get_contact("env@example.com").email == "env@example.com"
    assert not (tmp_path / "not-this-one.db").exists()


@pytest.mark.parametrize(
    "command", [["contacts", "show", "a@b.c"], ["automations", "check"], ["worker", "--until-idle"]]
)
def test_a_site_that_is_not_there_is_one_error_line_and_exit_1(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-site"
    assert main([*command, "--site", str(missing), "--instance", str(tmp_path / "i")]) == 1
    assert capsys.readouterr().err == (
        f"error: no site found: {missing / 'site.toml'} does not exist. Run from the folder that "
        "holds site/, or set SHORTCODES_SITE_DIR (--site for the CLI) to the site folder\n"
    )


def test_contacts_tags_credits_history_and_verify(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret\n"))
    code, out, _ = cli("contacts", "add", "Ann@Example.com", "--name", "Ann", "--password-stdin",
                       "--field", "FirstName=Ann", "--tag", "gold")  # fmt: skip
    assert (code, out) == (0, "contact 1 ann@example.com\n")
    assert cli("credits", "add", "ann@example.com", "100", "--key", "k1")[1] == "_Credits: 100\n"
    replay = cli("credits", "add", "ann@example.com", "100", "--key", "k1")[1]
    assert replay == "_Credits: 100 (already applied earlier with this key)\n"
    assert (
        cli("credits", "debit", "ann@example.com", "30", "--reason", "fix")[1] == "_Credits: 70\n"
    )
    code, _, err = cli("credits", "debit", "ann@example.com", "500")
    assert (code, err) == (1, "error: You need 500 credits; you have 70\n")
    assert cli("tags", "apply", "ann@example.com", "Trial", "--for", "14d")[1] == "applied\n"
    assert cli("tags", "remove", "ann@example.com", "Gold")[1] == "removed\n"
    code, out, _ = cli("contacts", "show", "ann@example.com")
    assert "tags: Trial (5)" in out
    assert "FirstName: Ann" in out
    assert "_Credits: 70" in out
    code, out, _ = cli("ledger", "history", "ann@example.com", "--limit", "1")
    assert "-30 = 70" in out
    assert "fix" in out
    assert "more: --after 2" in out
    assert "+100 = 100" in cli("ledger", "history", "ann@example.com", "--after", "2")[1]
    assert cli("ledger", "verify") == (0, "checked 1 balances and 2 entries: ok\n", "")


def test_ledger_verify_exits_1_and_names_each_disagreement(db_url: str, cli: Cli) -> None:
    cli("contacts", "add", "ann@example.com")
    cli("credits", "add", "ann@example.com", "10")
    with Store.from_url(db_url) as store, store.engine.begin() as conn:
        conn.execute(update(db.credit_accounts).values(balance=15))
    code, out, _ = cli("ledger", "verify")
    assert code == 1
    assert "contact 1 _Credits: balance is 15 but its entries add up to 10" in out
    with Store.from_url(db_url) as store, store.engine.begin() as conn:
        conn.execute(update(db.credit_accounts).values(balance=10))
    assert cli("ledger", "verify")[0] == 0


def test_actions_run_reports_success_refusal_and_replay(cli: Cli) -> None:
    cli("contacts", "add", "ann@example.com")
    cli("credits", "add", "ann@example.com", "70")
    run = ("actions", "run", "ann@example.com", "buy-course-b", "--key", "n1")
    assert cli(*run) == (0, "Unlocked Course B — 20 credits left\n", "")
    assert (
        cli(*run)[1]
        == "Unlocked Course B — 20 credits left (replayed: it already ran with this key)\n"
    )
    code, out, _ = cli("actions", "run", "ann@example.com", "buy-item", "--param", "cost=30")
    assert (code, out) == (1, "You need 30 credits; you have 20\n")
    code, _, err = cli("actions", "run", "ann@example.com", "buy-item", "--param", "cost=lots")
    assert code == 1
    assert err == (
        "error: parameter 'cost' of 'buy-item': an amount is a whole number "
        "from 0 to 1000000000000, got 'lots'\n"
    )
    code, _, err = cli("actions", "run", "ann@example.com", "fly")
    assert (code, "no actionset 'fly'" in err) == (1, True)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["credits", "add", "ann@example.com", "-5"], "must be a number greater than 0"),
        (["credits", "add", "ann@example.com", "fifty"], "must be a number greater than 0"),
        (["credits", "debit", "ann@example.com", "0"], "must be a number greater than 0"),
        (["credits", "add", "ann@example.com", "2.5.1"], "must be a number greater than 0"),
        (["credits", "add", "ann@example.com", "5", "--expires-in", "soon"], "duration"),
        (["credits", "add", "ann@example.com", "5", "--category", "free"], "invalid choice"),
        (["credits", "add", "ann@example.com"], "required: amount"),
        (["actions", "run", "ann@example.com"], "required: action"),
        (["actions", "run", "a", "buy-item", "--param", "cost"], "expected NAME=VALUE"),
        (["contacts", "list", "--page", "0"], "greater than 0"),
        (["contacts", "list", "--per-page", "x"], "greater than 0"),
        (["ledger", "history", "ann@example.com", "--limit", "0"], "greater than 0"),
        (["contacts", "add"], "required: email"),
        (["contacts", "unlock"], "required: email"),
        (["contacts", "add", "a@b.c", "--field", "=x"], "expected NAME=VALUE"),
        (["tags", "apply", "ann@example.com"], "required: tag"),
        (["credits", "refund"], "invalid choice"),
    ],
)
def test_malformed_arguments_exit_2_with_a_message_and_write_nothing(
    cli: Cli, db_url: str, argv: list[str], fragment: str
) -> None:
    cli("contacts", "add", "ann@example.com")
    with Store.from_url(db_url) as store:
        before = dump(store)
        code, _, err = cli(*argv)
        assert code == 2
        assert fragment in err
        assert dump(store) == before


def test_refusals_exit_1_with_an_error_line_and_write_nothing(cli: Cli, db_url: str) -> None:
    cli("contacts", "add", "ann@example.com")
    with Store.from_url(db_url) as store:
        before = dump(store)
        for argv, fragment in [
            (["credits", "add", "nobody@example.com", "5"], "no contact 'nobody@example.com'"),
            (
                ["credits", "add", "ann@example.com", "5", "--field", "_Gold"],
                "unknown credit field",
            ),
            (
                ["credits", "add", "ann@example.com", "2.5"],
                "an amount is a whole number above 0, got '2.5'",
            ),
            (["tags", "apply", "ann@example.com", "Platinum"], "no tag 'Platinum'"),
            (["tags", "apply", "ann@example.com", "Gold", "--for", "soon"], "duration"),
            (["contacts", "add", "ANN@example.com"], "already exists"),
            (["contacts", "add", "bob@example.com", "--tag", "Platinum"], "no tag 'Platinum'"),
            (["ledger", "history", "ann@example.com", "--after", "x"], "not a history cursor"),
        ]:
            code, _, err = cli(*argv)
            assert code == 1, argv
            assert err.startswith("error: ")
            assert fragment in err
        assert dump(store) == before


def test_a_malformed_site_file_is_reported_with_file_and_line(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text('[actionsets.x]\nsteps = [\n  { do = "teleport" },\n]\n', encoding="utf-8")
    code = main(["ledger", "verify", "--database-url", db_url, "--site", str(bad)])
    assert code == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: {bad}:3:5: actionsets.x.steps[0].do: unknown step 'teleport' (known steps: "
        "debit, credit, apply_tag, remove_tag, grant, set_field, send_email, webhook, redirect)\n"
    )


def test_contacts_import_reports_rejected_rows_and_exits_1(cli: Cli, tmp_path: Path) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text("email,tags,_Credits\nann@example.com,Gold,10\nbad,,1\nbob@example.com,,x\n")
    code, out, err = cli("contacts", "import", str(csv))
    assert code == 1
    assert f"{csv}:3: rejected (bad): not a valid email address: 'bad'" in err
    assert f"{csv}:4: rejected (bob@example.com): _Credits must be a whole number" in err
    assert "2 of 3 rows rejected; nothing imported" in err
    assert cli("contacts", "show", "ann@example.com")[0] == 1
    code, out, _ = cli("contacts", "import", str(csv), "--skip-bad")
    assert (code, out) == (1, "imported 1 of 3 rows; rejected 2\n")
    assert "_Credits: 10" in cli("contacts", "show", "ann@example.com")[1]


def test_the_console_entry_point_runs_as_a_separate_process(db_url: str, site_file: Path) -> None:
    env = {**os.environ, "DATABASE_URL": db_url}
    argv = [sys.executable, "-m", "shortcodes", "db", "upgrade", "--site", str(site_file)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    verify = [sys.executable, "-m", "shortcodes", "ledger", "verify"]
    done = subprocess.run(verify, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, "checked 0 balances and 0 entries: ok\n")


def test_contacts_unlock_lifts_a_login_lock(cli: Cli, store: Store) -> None:
    store.add_contact("ann@example.com", password="right horse")
    throttle = store.login_throttle()
    for _ in range(5):
        assert throttle.check_password("ann@example.com", "guess", "203.0.113.7") is None
    assert isinstance(
        throttle.check_password("ann@example.com", "right horse", "203.0.113.7"), Locked
    )
    assert cli("contacts", "unlock", " Ann@Example.com") == (
        0, "forgot 5 failed logins of  Ann@Example.com\n", ""
    )  # fmt: skip
    assert isinstance(
        throttle.check_password("ann@example.com", "right horse", "203.0.113.7"), Contact
    )
    assert (
        cli("contacts", "unlock", "ann@example.com")[1]
        == "forgot 0 failed logins of ann@example.com\n"
    )


def test_contacts_list_searches_filters_by_tag_and_pages(cli: Cli) -> None:
    for email, name in (("ann@example.com", "Ann"), ("bob@example.com", "Bob"),
                        ("anna@example.com", "Anna")):  # fmt: skip
        cli("contacts", "add", email, "--name", name)
    cli("tags", "apply", "bob@example.com", "Owns Course B")
    code, out, _ = cli("contacts", "list", "--search", "ANN")
    assert code == 0
    assert out.splitlines() == [
        f"{3:>8}  {'anna@example.com':<40} Anna",
        f"{1:>8}  {'ann@example.com':<40} Ann",
        "page 1 of 1 (2 contacts)",
    ]
    assert cli("contacts", "list", "--tag", "owns course b")[1].splitlines()[-1] == (
        "page 1 of 1 (1 contacts)"
    )
    paged = cli("contacts", "list", "--per-page", "2", "--page", "2")[1].splitlines()
    assert paged == [f"{1:>8}  {'ann@example.com':<40} Ann", "page 2 of 2 (3 contacts)"]
    code, _, err = cli("contacts", "list", "--tag", "No Such Tag")
    assert code == 1
    assert err.startswith("error: ")
    assert cli("contacts", "list", "--per-page", "5000")[0] == 1


def test_tags_list_shows_holders_and_filters(cli: Cli) -> None:
    cli("contacts", "add", "ann@example.com")
    cli("tags", "apply", "ann@example.com", "Owns Course B")
    code, out, _ = cli("tags", "list", "--held")
    assert code == 0
    (line,) = out.splitlines()
    assert line.split() == [line.split()[0], "Owns", "Course", "B", "product", "1", "holding"]
    assert len(cli("tags", "list")[1].splitlines()) == 7


def test_contacts_import_help_describes_the_csv_format(cli: Cli) -> None:
    code, out, _ = cli("contacts", "import", "--help")
    assert code == 0
    assert "_Credits   one column per credit field" in out
    assert "email,name,tags,_Credits,City" in out


def test_a_credits_column_without_the_fields_spelling_is_refused(
    cli: Cli, tmp_path: Path, db_url: str
) -> None:
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("email,credits\nann@example.com,50\n", encoding="utf-8")
    code, _, err = cli("contacts", "import", str(csv_file))
    assert code == 1
    assert "column 'credits' looks like the credit field '_Credits'" in err
    with Store.from_url(db_url) as store:
        assert store.events_after(0, 10) == []
