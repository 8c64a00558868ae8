"""Alembic migrations on both databases: they build exactly the store schema, from code, safely."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, Table, create_engine, insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from shortcodes.store import Store
from shortcodes.store import schema as db
from shortcodes.store.database import make_engine
from shortcodes.store.migrate import current_revision, head_revision, upgrade

STORE_TABLES = {t.name for t in db.metadata.sorted_tables}


@pytest.fixture
def fresh_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database (a new SQLite file, or a new PostgreSQL schema)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    _, worker_url = request.getfixturevalue("pg_admin")
    name = f"fresh_{uuid.uuid4().hex[:12]}"
    base = make_url(worker_url).difference_update_query(["options"])
    root = create_engine(base)
    with root.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    yield base.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(False)
    with root.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    root.dispose()


def _only_store_tables(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
    # Every table is on the one MetaData, so the head migration must build all of them.
    if kind == "table":
        return name in STORE_TABLES
    table = getattr(obj, "table", None)
    return table is None or table.name in STORE_TABLES


def test_upgrade_builds_exactly_the_store_schema(fresh_url: str) -> None:
    with Store.from_url(fresh_url) as store:
        assert current_revision(store.engine) is None
        store.upgrade()
        assert current_revision(store.engine) == head_revision()
        with store.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_object": _only_store_tables, "compare_type": True}
            )
            assert compare_metadata(context, db.metadata) == []
            assert set(inspect(conn).get_table_names()) >= STORE_TABLES


def test_upgrading_again_changes_nothing(fresh_url: str) -> None:
    with Store.from_url(fresh_url) as store:
        store.upgrade()
        store.add_contact("ann@example.com")
        store.upgrade()
        assert store.get_contact("ann@example.com").id == 1


def test_two_processes_upgrading_at_once_both_succeed(fresh_url: str) -> None:
    engines = [make_engine(fresh_url) for _ in range(2)]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(Store(e).upgrade) for e in engines]:
                future.result()
        assert current_revision(engines[0]) == head_revision()
    finally:
        for engine in engines:
            engine.dispose()


def test_the_check_constraints_exist_in_the_migrated_database(fresh_url: str) -> None:
    with Store.from_url(fresh_url) as store:
        store.upgrade()
        found = inspect(store.engine)
        names = {
            table: sorted(c["name"] for c in found.get_check_constraints(table))
            for table in ("credit_accounts", "ledger_entries", "grant_moves")
        }
        # Revision 0001 on PostgreSQL named its constraints with the prefix twice (SQLite's
        # rebuild by 0011 took the frozen names); 0011 drops the ones it replaces either way.
        old = "ck_ledger_entries_" if store.engine.dialect.name == "postgresql" else ""
        assert names == {
            "credit_accounts": [
                "ck_credit_accounts_balance_covered", "ck_credit_accounts_debt_nonnegative"
            ],
            "ledger_entries": sorted([
                f"ck_ledger_entries_{old}belongs_to_operation_or_run",
                "ck_ledger_entries_debt_delta_in_range",
                f"ck_ledger_entries_{old}delta_nonzero",
            ]),
            "grant_moves": ["ck_grant_moves_delta_nonzero", "ck_grant_moves_kind_known"],
        }  # fmt: skip


# -- 0007: grants from a database the previous version filled ----------------------------------


def _fill_like_0006(engine: Any) -> None:
    """Rows as the previous version wrote them (ids from the sequences: contacts 1 and 2): two contacts with ledger entries and balances,
    and loyalty lots (one available with points left, one pending, one expired)."""
    when = datetime(2026, 1, 1, 12, 0)
    meta = MetaData()
    t = {
        name: Table(name, meta, autoload_with=engine)
        for name in (
            "contacts", "operations", "ledger_entries", "credit_accounts",
            "loyalty_lots", "loyalty_accounts",
        )
    }  # fmt: skip
    with engine.begin() as conn:
        for email in ("ann@example.com", "bob@example.com"):
            conn.execute(insert(t["contacts"]).values(email=email, fields={}, created_at=when))
        conn.execute(
            insert(t["operations"]).values(
                key="old", kind="credit", contact_id=None, fingerprint="0" * 64, result={},
                actor_kind="system", actor_id="", created_at=when,
            )
        )  # fmt: skip
        entries = [(1, 1, 70, 70), (2, 1, -20, 50), (3, 2, 5, 5)]
        for entry_id, contact, delta, after in entries:
            conn.execute(
                insert(t["ledger_entries"]).values(
                    contact_id=contact, field="_Credits", delta=delta,
                    balance_after=after, reason="old", actor_kind="system", actor_id="",
                    idempotency_key=f"old#{entry_id}", operation_id=1, created_at=when,
                )
            )  # fmt: skip
        for contact, balance in ((1, 50), (2, 5)):
            conn.execute(
                insert(t["credit_accounts"]).values(
                    contact_id=contact, field="_Credits", balance=balance, updated_at=when
                )
            )
        lots = [("a", 100, 40, "available"), ("b", 30, 30, "pending"), ("c", 10, 0, "expired")]
        for key, points, remaining, status in lots:
            conn.execute(
                insert(t["loyalty_lots"]).values(
                    contact_id=1, key=key, points=points, remaining=remaining, status=status,
                    reason=f"lot {key}", earned_at=when, available_at=when + timedelta(days=14),
                    expires_at=when + timedelta(days=365),
                )
            )  # fmt: skip
        conn.execute(
            insert(t["loyalty_accounts"]).values(
                contact_id=1, pending=30, available=40, lifetime=110, stage="Bronze",
                updated_at=when,
            )
        )  # fmt: skip


def test_0007_turns_every_balance_into_one_grant_and_loyalty_lots_into_points_grants(
    fresh_url: str,
) -> None:
    with Store.from_url(fresh_url) as store:
        upgrade(store.engine, "0006")
        _fill_like_0006(store.engine)
        store.upgrade()
        assert current_revision(store.engine) == head_revision()
        report = store.verify()
        assert report.ok, report.problems
        assert [
            (g.source, g.category, g.amount, g.remaining, g.expires_at)
            for g in store.grants(1, "_Credits")
        ] == [("opening", "paid", 50, 50, None)]
        assert [(g.amount, g.remaining) for g in store.grants(2, "_Credits")] == [(5, 5)]
        points = sorted(
            (g.status, g.remaining, g.reason) for g in store.grants(1) if g.field == "Points"
        )
        assert points == [("active", 40, "lot a"), ("pending", 30, "lot b")]
        assert store.get_contact(1).field("Points") == 40
        store.debit(1, 45, reason="after the migration")
        assert [(g.remaining) for g in store.grants(1, "_Credits", include_spent=True)] == [5]
        assert store.verify().ok


def test_0009_keeps_the_lifetime_points_of_lots_no_grant_records_so_stages_never_fall(
    fresh_url: str,
) -> None:
    from shortcodes.automations import loyalty
    from shortcodes.automations.rules import LoyaltyConfig

    with Store.from_url(fresh_url) as store:
        upgrade(store.engine, "0006")
        _fill_like_0006(store.engine)
        with store.engine.begin() as conn:  # a Silver member: 600 points earned, 40 left
            conn.execute(text("UPDATE loyalty_accounts SET lifetime = 600, stage = 'Silver'"))
        store.upgrade()
        cfg = LoyaltyConfig()
        store.run_in_transaction(lambda tx: loyalty.earn(tx, cfg, 1, 10, "k", wait="now"))
        summary = store.run_in_transaction(lambda tx: loyalty.summary(tx.conn, cfg, 1, tx.now))
        assert (summary.available, summary.lifetime, summary.stage) == (50, 610, "Silver")
        with store.engine.connect() as conn:
            kinds = [k for (k,) in conn.execute(text("SELECT kind FROM events ORDER BY id"))]
            referrals = inspect(conn).get_columns("loyalty_referrals")
        assert "stage_changed" not in kinds
        assert {c["name"]: c["nullable"] for c in referrals}["approved_at"] is True
        assert store.verify().ok


# -- 0011: debt, from a database the previous version filled -------------------------------------


def test_0011_adds_a_zero_debt_to_every_account_and_entry_and_verify_passes(
    fresh_url: str,
) -> None:
    with Store.from_url(fresh_url) as store:
        upgrade(store.engine, "0006")
        _fill_like_0006(store.engine)
        upgrade(store.engine, "0010")
        store.upgrade()
        assert current_revision(store.engine) == head_revision() == "0011"
        report = store.verify()
        assert report.ok, report.problems
        a, e = db.credit_accounts, db.ledger_entries
        with store.engine.connect() as conn:
            accounts = conn.execute(
                select(a.c.contact_id, a.c.field, a.c.balance, a.c.debt).order_by(
                    a.c.contact_id, a.c.field
                )
            ).all()
            debts = conn.execute(select(e.c.debt_delta).order_by(e.c.id)).scalars().all()
        assert [tuple(r) for r in accounts] == [
            (1, "Points", 40, 0), (1, "_Credits", 50, 0), (2, "_Credits", 5, 0)
        ]  # fmt: skip
        assert debts == [0, 0, 0, 0]
        # The rebuilt tables still refuse what they refused (SQLite copied them in batch mode).
        with pytest.raises(IntegrityError), store.engine.begin() as conn:
            conn.execute(a.update().where(a.c.contact_id == 2).values(balance=-1))
        with pytest.raises(IntegrityError), store.engine.begin() as conn:
            conn.execute(db.grant_moves.update().values(kind="gift"))
        store.debit(1, 45, reason="after the migration")
        store.credit(2, 1, reason="after the migration")
        assert store.verify().ok
