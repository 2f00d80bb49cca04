"""Roles: ledger_analyst reads marts and nothing else; ledger_loader writes everything."""

from __future__ import annotations

import secrets

import psycopg2
import pytest
from psycopg2 import errors, sql
from sqlalchemy.engine import make_url

from inference_ledger import contracts
from inference_ledger.db import connect


@pytest.fixture
def analyst_url(pg_url):
    """A real LOGIN user holding ledger_analyst, as an admin would create one."""
    name, password = f"analyst_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    admin = connect(pg_url)
    admin.autocommit = True
    admin.cursor().execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE ledger_analyst").format(
            sql.Identifier(name), sql.Literal(password)
        )
    )
    yield make_url(pg_url).set(username=name, password=password)
    admin.cursor().execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
    admin.close()


def _denied(url, statement: str) -> bool:
    conn = connect(url)
    try:
        conn.cursor().execute(statement)
    except errors.InsufficientPrivilege:
        return True
    finally:
        conn.close()
    return False


def test_local_connections_are_trusted(pg_conn):
    # Why a password proves nothing here, and why the socket directory must stay private.
    with pg_conn.cursor() as cur:
        cur.execute("SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type = 'local'")
        assert cur.fetchall() == [("trust",)]


def test_analyst_logs_in_and_reads_every_mart(analyst_url):
    conn = connect(analyst_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, pg_has_role('ledger_analyst', 'MEMBER')")
            assert cur.fetchone() == (analyst_url.username, True)
            for name in contracts.schema_names("marts"):
                cur.execute(sql.SQL("SELECT count(*) FROM marts.{}").format(sql.Identifier(name)))
    finally:
        conn.close()


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM staging.quarterly_summary",
        "SELECT * FROM staging.control_totals",
        "SELECT * FROM audit.runs",
        "SELECT * FROM audit.schema_migrations",
        "INSERT INTO marts.quarterly_summary (period_label) VALUES ('2024-Q1')",
        "DELETE FROM marts.inference_spend_daily",
        "TRUNCATE marts.unit_cost_monthly",
        "CREATE TABLE marts.scratch (x int)",
    ],
)
def test_analyst_is_denied_everything_else(analyst_url, statement):
    assert _denied(analyst_url, statement)


def test_loader_writes_staging_marts_and_audit(pg_conn):
    """Each write as the loader role takes effect (read back as that role); the connection's
    rollback leaves nothing behind."""

    def one(cur, sql: str):
        cur.execute(sql)
        return cur.fetchone()[0]

    with pg_conn.cursor() as cur:
        cur.execute("SET ROLE ledger_loader")
        assert one(cur, "SELECT current_user") == "ledger_loader"
        cur.execute(
            "INSERT INTO audit.runs (run_id, command, status)"
            " VALUES ('test_db_roles', 'run', 'running')"
        )
        assert one(cur, "SELECT status FROM audit.runs WHERE run_id = 'test_db_roles'") == "running"
        cur.execute("INSERT INTO staging.control_totals (table_name) VALUES ('quarterly_summary')")
        assert one(cur, "SELECT count(*) FROM staging.control_totals") == 1
        cur.execute("TRUNCATE staging.control_totals")
        assert one(cur, "SELECT count(*) FROM staging.control_totals") == 0
        cur.execute(
            "INSERT INTO marts.quarterly_summary VALUES"
            " ('1999-Q1', '1999-01-01', '1999-04-01', 'FY99-Q3', 1, 2, 10, 0, -2, 0.1)"
        )
        period = "SELECT count(*) FROM marts.quarterly_summary WHERE period_label = '1999-Q1'"
        assert one(cur, period) == 1
        cur.execute("DELETE FROM marts.quarterly_summary WHERE period_label = '1999-Q1'")
        assert one(cur, period) == 0


@pytest.mark.parametrize("role", ["ledger_loader", "ledger_analyst"])
def test_group_roles_cannot_log_in(pg_url, role):
    # NOLOGIN: an admin grants them to real users, so no password exists for them anywhere.
    with pytest.raises(psycopg2.OperationalError, match="not permitted to log in"):
        connect(make_url(pg_url).set(username=role))
