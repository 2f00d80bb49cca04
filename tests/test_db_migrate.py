"""Migrations: applied once each, in order, atomically, serialised, and immutable once applied."""

from __future__ import annotations

import re
import secrets
import shutil
import threading
from decimal import Decimal as D

import pytest
from psycopg2 import sql
from sqlalchemy.engine import make_url

from inference_ledger.db import MigrationError, connect, migrate
from inference_ledger.db.migrate import discover
from inference_ledger.periods import Month
from inference_ledger.resources import resource_dir

CATALOG = """
SELECT table_schema, table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns
WHERE table_schema IN ('staging', 'marts', 'audit')
ORDER BY 1, 2, ordinal_position
"""


@pytest.fixture
def scratch_url(pg_url):
    """An empty database on the session's server, for migrations that must start from zero."""
    name = f"scratch_{secrets.token_hex(4)}"
    admin = connect(pg_url)
    admin.autocommit = True
    admin.cursor().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    admin.cursor().execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


@pytest.fixture
def sql_copy(tmp_path):
    folder = tmp_path / "sql"
    shutil.copytree(resource_dir("sql"), folder)
    return folder


def _fetch(conn, query):
    with conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchall()


def test_second_run_changes_nothing(pg_url, pg_conn):
    before = _fetch(pg_conn, CATALOG)
    pg_conn.rollback()

    assert migrate(pg_url) == []

    assert _fetch(pg_conn, CATALOG) == before
    recorded = _fetch(
        pg_conn,
        "SELECT version, filename, checksum_sha256, applied_at IS NOT NULL"
        " FROM audit.schema_migrations ORDER BY version",
    )
    assert recorded == [(m.version, m.filename, m.checksum_sha256, True) for m in discover()]


def test_changed_or_missing_applied_migration_is_an_error(pg_url, sql_copy):
    assert migrate(pg_url, sql_dir=sql_copy) == []

    with (sql_copy / "002_marts.sql").open("a") as fh:
        fh.write("\n-- an innocent-looking edit\n")
    with pytest.raises(MigrationError, match=r"002_marts\.sql changed after it was applied"):
        migrate(pg_url, sql_dir=sql_copy)

    (sql_copy / "002_marts.sql").unlink()
    with pytest.raises(MigrationError, match=r"002_marts\.sql .*missing on disk"):
        migrate(pg_url, sql_dir=sql_copy)


def test_misnamed_file_is_an_error_not_skipped(sql_copy):
    (sql_copy / "views.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"views\.sql"):
        discover(sql_copy)


def test_concurrent_runs_apply_each_migration_once(scratch_url):
    barrier = threading.Barrier(2)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run():
        try:
            barrier.wait()
            results.append(migrate(scratch_url))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert errors == []
    assert sorted(results, key=len) == [[], [m.filename for m in discover()]]
    conn = connect(scratch_url)
    try:
        assert _fetch(conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
    finally:
        conn.close()


def test_failed_migration_is_rolled_back_and_named(scratch_url, sql_copy):
    applied = [m.version for m in discover(sql_copy)]
    broken = sql_copy / f"{max(applied) + 1:03d}_broken.sql"
    broken.write_text("CREATE TABLE audit.half_done (x int);\nSELECT * FROM no_such_table;\n")
    with pytest.raises(MigrationError, match=rf"{re.escape(broken.name)} failed"):
        migrate(scratch_url, sql_dir=sql_copy)

    conn = connect(scratch_url)
    try:
        versions = _fetch(conn, "SELECT version FROM audit.schema_migrations ORDER BY 1")
        assert versions == [(v,) for v in applied]  # the good ones before it stay applied
        assert _fetch(conn, "SELECT to_regclass('audit.half_done')") == [(None,)]
        conn.rollback()

        broken.write_text("CREATE TABLE audit.half_done (x int);\n")
        assert migrate(conn, sql_dir=sql_copy) == [broken.name]
    finally:
        conn.close()


def test_connection_with_open_transaction_is_refused(pg_conn):
    pg_conn.cursor().execute("SELECT 1")
    with pytest.raises(MigrationError, match="no transaction in progress"):
        migrate(pg_conn)
    pg_conn.rollback()
    assert migrate(pg_conn) == []
    assert pg_conn.autocommit is False


def test_016_keeps_published_values_and_labels_the_published_months(scratch_url, sql_copy):
    """A ledger published before 016: the ratios keep their values under the new names (and
    the old ones in the legacy view), and the period calendar holds the published quarters'
    months with the labels periods.py gives them, before any publish rewrites it."""
    later = {p: p.read_text() for p in sql_copy.glob("*.sql") if int(p.name[:3]) >= 16}
    for path in later:
        path.unlink()
    migrate(scratch_url, sql_dir=sql_copy)
    conn = connect(scratch_url)
    try:
        with conn.cursor() as cur:
            for label, start, end, fiscal, spend in [
                ("2024-Q1", "2024-01-01", "2024-04-01", "FY24-Q3", "10.50"),
                ("2024-Q3", "2024-07-01", "2024-10-01", "FY25-Q1", "2.25"),
            ]:
                cur.execute(
                    "INSERT INTO marts.quarterly_summary (period_label, period_start, period_end,"
                    " fiscal_period_label, inference_spend_usd, revshare_paid_usd,"
                    " revshare_received_usd, net_revshare_usd, revshare_paid_adjustment_usd,"
                    " revshare_received_adjustment_usd) VALUES (%s, %s, %s, %s, %s, 1, 3, 2, 0, 0)",
                    (label, start, end, fiscal, spend),
                )
            cur.execute(
                "INSERT INTO marts.revshare_reconciliation (period_label, period_start,"
                " period_end, agreement_id, direction, counterparty, variance_pct,"
                " usage_estimate_variance_pct, status, is_adjustment) VALUES ('2024-Q1',"
                " '2024-01-01', '2024-04-01', 'PAY', 'payable', 'P', 0.0178571429, 174.4385964912,"
                " 'matched', false)"
            )
        conn.commit()
        for path, text in later.items():
            path.write_text(text)
        assert migrate(conn, sql_dir=sql_copy) == sorted(p.name for p in later)

        assert _fetch(
            conn,
            "SELECT variance_ratio, usage_estimate_variance_ratio, variance_pct,"
            " usage_estimate_variance_pct FROM marts.revshare_reconciliation_legacy",
        ) == [(D("0.0178571429"), D("174.4385964912"), D("0.0178571429"), D("174.4385964912"))]
        calendar = _fetch(conn, "SELECT * FROM marts.period_calendar ORDER BY month_start")
        months = [Month(2024, m) for m in (1, 2, 3, 7, 8, 9)]
        assert calendar == [tuple(m.row().values()) for m in months]
        assert _fetch(
            conn,
            "SELECT fiscal_year_label, quarters_published, is_complete, period_labels,"
            " inference_spend_usd, net_revshare_usd FROM marts.fiscal_year_summary ORDER BY 1",
        ) == [
            ("FY24", 1, False, "2024-Q1", D("10.50"), D("2")),
            ("FY25", 1, False, "2024-Q3", D("2.25"), D("2")),
        ]
    finally:
        conn.close()
