"""Host against real server processes: first run, a purchase over HTTP, and concurrent clicks.

These start ``python server.py`` or gunicorn on a free loopback port and speak HTTP to it, so they
prove what the Flask test client cannot: the first start creates, migrates and seeds the database,
sessions and CSRF work across worker processes, and one button clicked 100 times at once by the
same session debits once. On PostgreSQL, two server processes selling to one contact in parallel
never overdraw.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shortcodes.store import schema
from shortcodes.store.facade import Store
from tests.support.live_server import LiveServer
from tests.support.paths import SITE
from tests.support.visitors import Answer, HttpVisitor

pytestmark = pytest.mark.slow


def test_python_server_py_first_run_creates_the_database_and_sells_a_course(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    db = f"sqlite:///{instance / 'shortcodes.db'}"
    with LiveServer(instance, db) as server:
        rich = HttpVisitor(server.url)
        assert rich.login("rich@example.com", "rich-pass").status == 303
        rich.request("/catalog")
        bought = rich.request("/actions/buy-course-b", rich.button("buy-course-b"))
        assert bought.status == 303
        assert bought.location.endswith("/courses/b")
        page = rich.request("/courses/b")
        assert page.status == 200
        assert "Unlocked Course B — 210 credits left" in page.text
        assert "You own this for good" in page.text
    with Store.from_url(db) as store:
        assert store.balance("rich@example.com") == 210
        assert store.verify().ok


def test_flask_run_serves_the_demo_site_too(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    with LiveServer(instance, f"sqlite:///{instance / 'shortcodes.db'}", flask_cli=True) as server:
        member = HttpVisitor(server.url)
        assert member.login("member@example.com", "member-pass").status == 303
        page = member.request("/masterclass")
        assert page.status == 200
        assert "all-access membership" in page.text


def test_gunicorn_workers_starting_together_on_a_new_sqlite_file_all_boot(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    db = f"sqlite:///{instance / 'shortcodes.db'}"
    with LiveServer(instance, db, gunicorn_workers=3, threads=2) as server:
        visitors = [HttpVisitor(server.url) for _ in range(6)]
        for who in visitors:  # several connections, so more than one worker answers
            assert who.login("poor@example.com", "poor-pass").status == 303
        assert "Worker failed to boot" not in server.read_log()
    with Store.from_url(db) as store:
        assert store.balance("poor@example.com") == 5  # seeded once, not once per worker


def fire(count: int, send: list[tuple[HttpVisitor, str, dict[str, str]]]) -> list[Answer]:
    """Send every request at the same moment from its own thread; the answers in order."""
    answers: list[Answer | None] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        who, path, data = send[index]
        barrier.wait()
        answers[index] = who.request(path, data)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def test_100_simultaneous_posts_of_one_button_by_one_session_debit_once(
    template_db: Path, tmp_path: Path
) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    shutil.copyfile(template_db, instance / "shortcodes.db")
    db = f"sqlite:///{instance / 'shortcodes.db'}"
    with LiveServer(instance, db, gunicorn_workers=2, threads=8) as server:
        rich = HttpVisitor(server.url)
        assert rich.login("rich@example.com", "rich-pass").status == 303
        rich.request("/catalog")
        fields = rich.button("buy-course-b")
        answers = fire(100, [(rich, "/actions/buy-course-b", fields)] * 100)
    assert {a.status for a in answers} == {303}, server.read_log()[-2000:]
    with Store.from_url(db) as store:
        assert store.balance("rich@example.com") == 210
        entries = store.history("rich@example.com", limit=50).entries
        assert [e.delta for e in entries] == [-50, 260]
        assert store.verify().ok


SNACK_ACTIONSET = """
[actionsets.buy-snack]
title = "Snack"
params.cost = { type = "int", default = 50 }
steps = [{ do = "debit", field = "_Credits", amount = "$cost" }]
"""


@pytest.mark.postgres
def test_two_server_processes_on_postgresql_never_overdraw(
    pg_database: str, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    shutil.copytree(SITE, site)
    with (site / "site.toml").open("a", encoding="utf-8") as toml:
        toml.write(SNACK_ACTIONSET)
    (site / "pages" / "snack.html").write_text(
        '[memb_actionset_button action_id="buy-snack" cost="50"]', encoding="utf-8"
    )
    first = LiveServer(tmp_path / "a", pg_database, site_dir=site, gunicorn_workers=1, threads=8)
    second = LiveServer(tmp_path / "b", pg_database, site_dir=site, gunicorn_workers=1, threads=8)
    with first, second:
        sends = []
        for server in [first, second] * 10:  # 20 buttons, each from its own page view
            rich = HttpVisitor(server.url)
            assert rich.login("rich@example.com", "rich-pass").status == 303
            rich.request("/snack")
            sends.append((rich, "/actions/buy-snack", rich.button("buy-snack")))
        answers = fire(len(sends), sends)
    assert {a.status for a in answers} == {303}
    with Store.from_url(pg_database) as store:
        assert store.balance("rich@example.com") == 10  # 260 buys exactly five 50-credit snacks
        with store.engine.connect() as conn:
            runs = conn.execute(
                select(func.count()).select_from(schema.actionset_runs)
                .where(schema.actionset_runs.c.action == "buy-snack")
            ).scalar_one()  # fmt: skip
        assert runs == 5
        assert store.verify().ok


@pytest.mark.postgres
def test_30_parallel_password_guesses_on_two_workers_get_exactly_five_checks(
    pg_database: str, tmp_path: Path
) -> None:
    with LiveServer(tmp_path / "a", pg_database, gunicorn_workers=2, threads=8) as server:
        guessers = [HttpVisitor(server.url) for _ in range(30)]
        sends = []
        for guesser in guessers:
            sends.append((guesser, "/login", guesser.login_form("rich@example.com", "guess")))
        statuses = [a.status for a in fire(len(sends), sends)]
        assert set(statuses) <= {401, 429}, server.read_log()[-2000:]
        checked = statuses.count(401)
        # Whatever the interleaving, five guesses were allowed: the rest of them is still there.
        while (answer := guessers[0].login("rich@example.com", "guess")).status == 401:
            checked += 1
        assert answer.status == 429
        assert checked == 5
        assert guessers[0].login("rich@example.com", "rich-pass").status == 429
