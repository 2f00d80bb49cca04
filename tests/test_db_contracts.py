"""THE contract test: the live marts and staging tables equal schemas/marts/*.schema.json."""

from __future__ import annotations

import pytest
from psycopg2 import errors

from inference_ledger import contracts

MARTS = contracts.schema_names("marts")

COLUMNS = """
SELECT column_name,
       CASE WHEN data_type = 'numeric'
            THEN 'numeric(' || numeric_precision || ',' || numeric_scale || ')'
            ELSE data_type END,
       is_nullable = 'YES'
FROM information_schema.columns
WHERE table_schema = %s AND table_name = %s
ORDER BY ordinal_position
"""

PRIMARY_KEY = """
SELECT k.column_name
FROM information_schema.table_constraints c
JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name)
WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = %s AND c.table_name = %s
ORDER BY k.ordinal_position
"""


def _rows(conn, query, *args):
    with conn.cursor() as cur:
        cur.execute(query, args or None)
        return cur.fetchall()


def test_marts_hold_exactly_the_contracted_tables(pg_conn):
    tables = _rows(
        pg_conn,
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'marts' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    assert [t for (t,) in tables] == MARTS


@pytest.mark.parametrize("name", MARTS)
def test_mart_columns_types_nullability_and_key(pg_conn, name):
    expected = [(c.name, c.postgres_type, c.nullable) for c in contracts.columns("marts", name)]
    assert _rows(pg_conn, COLUMNS, "marts", name) == expected
    assert [k for (k,) in _rows(pg_conn, PRIMARY_KEY, "marts", name)] == contracts.primary_key(name)
    grain = contracts.load_schema("marts", name)["x-grain"]
    comment = _rows(pg_conn, "SELECT obj_description(%s::regclass, 'pg_class')", f"marts.{name}")
    assert comment == [(f"Grain: {grain}.",)]


@pytest.mark.parametrize("name", MARTS)
def test_staging_twin_has_the_columns_and_no_constraints(pg_conn, name):
    expected = [(c.name, c.postgres_type, True) for c in contracts.columns("marts", name)]
    assert _rows(pg_conn, COLUMNS, "staging", name) == expected
    constraints = _rows(
        pg_conn,
        "SELECT constraint_type FROM information_schema.table_constraints"
        " WHERE table_schema = 'staging' AND table_name = %s",
        name,
    )
    assert constraints == []


def test_staging_takes_a_bad_batch_so_the_audit_can_catch_it(pg_conn):
    with pg_conn.cursor() as cur:
        cur.execute("INSERT INTO staging.quarterly_summary (period_label) VALUES ('2024-Q1')")
        cur.execute("INSERT INTO staging.quarterly_summary (period_label) VALUES ('2024-Q1')")
        cur.execute(
            "SELECT count(*) FROM staging.quarterly_summary"
            " GROUP BY period_label HAVING count(*) > 1"
        )
        assert cur.fetchall() == [(2,)]


def test_loader_owns_every_table_and_analysts_read_every_mart(pg_conn):
    owners = _rows(
        pg_conn,
        "SELECT DISTINCT tableowner FROM pg_tables"
        " WHERE schemaname IN ('staging', 'marts', 'audit')"
        " AND (schemaname, tablename) <> ('audit', 'schema_migrations')",
    )
    assert owners == [("ledger_loader",)]
    readable = _rows(
        pg_conn,
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'marts' AND c.relkind = 'r'"
        " AND has_table_privilege('ledger_analyst', c.oid, 'SELECT') ORDER BY 1",
    )
    assert [t for (t,) in readable] == MARTS


def test_input_file_rows_must_tie_out(pg_conn):
    with pg_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO audit.runs (run_id, command, status)"
            " VALUES ('test_db_contracts', 'run', 'running')"
        )
        insert = (
            "INSERT INTO audit.input_files (run_id, source, path, checksum_sha256, byte_count,"
            " rows_read, rows_loaded, rows_quarantined, rows_superseded, rows_deduplicated)"
            " VALUES ('test_db_contracts', 'billing', %s, 'abc', 10, %s, 5, 2, 1, 1)"
        )
        cur.execute(insert, ("a.csv", 9))
        cur.execute("SAVEPOINT s")
        with pytest.raises(errors.CheckViolation, match="input_files_rows_tie_out"):
            cur.execute(insert, ("b.csv", 10))  # one row unaccounted for
        cur.execute("ROLLBACK TO SAVEPOINT s")
        with pytest.raises(errors.CheckViolation):
            cur.execute("UPDATE audit.runs SET status = 'done' WHERE run_id = 'test_db_contracts'")


SIGNOFF_COLUMNS = {
    "closed_periods": [
        "accepted_exception_count",
        "accepted_exceptions",
        "accepted_dq_failure_count",
        "accepted_dq_failures",
        "acceptance_reason",
    ],
    "period_close_events": [
        "accepted_exception_count",
        "accepted_exceptions",
        "accepted_dq_failure_count",
        "accepted_dq_failures",
    ],
}


def test_reconciliation_exceptions_view_is_documented_and_analysts_read_it(pg_conn):
    """sql/015: a comment on the view and on every column; the loader's default privileges
    (sql/001) cover views, so analysts read it with no grant of its own."""
    columns = _rows(
        pg_conn,
        "SELECT a.attname, col_description(a.attrelid, a.attnum) IS NOT NULL"
        " FROM pg_attribute a WHERE a.attrelid = 'marts.reconciliation_exceptions'::regclass"
        " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    )
    assert columns == [
        (c, True)
        for c in (
            "period_label",
            "agreement_id",
            "direction",
            "is_adjustment",
            "counterparty",
            "status",
            "expected_usd",
            "settled_usd",
            "variance_usd",
            "variance_pct",
            "tolerance_usd",
            "payment_due_date",
            "statement_ids",
            "adjustment_of_period",
        )
    ]
    (comment,) = _rows(
        pg_conn, "SELECT obj_description('marts.reconciliation_exceptions'::regclass, 'pg_class')"
    )[0]
    assert comment.startswith("Grain: one row per period, agreement, direction and adjustment")
    assert _rows(
        pg_conn,
        "SELECT c.relowner::regrole::text,"
        " has_table_privilege('ledger_analyst', c.oid, 'SELECT'),"
        " has_table_privilege('ledger_analyst', c.oid, 'INSERT')"
        " FROM pg_class c WHERE c.oid = 'marts.reconciliation_exceptions'::regclass",
    ) == [("ledger_loader", True, False)]


@pytest.mark.parametrize("table", sorted(SIGNOFF_COLUMNS))
def test_close_signoff_columns_are_documented(pg_conn, table):
    documented = _rows(
        pg_conn,
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0"
        " AND NOT a.attisdropped AND col_description(a.attrelid, a.attnum) IS NOT NULL",
        f"audit.{table}",
    )
    assert set(SIGNOFF_COLUMNS[table]) <= {c for (c,) in documented}


def test_a_close_that_accepted_something_must_say_why(pg_conn):
    with pg_conn.cursor() as cur, pytest.raises(errors.CheckViolation):
        cur.execute(
            "INSERT INTO audit.closed_periods (period_label, closed_by, snapshot_sha256,"
            " snapshot, accepted_exception_count) VALUES ('1999-Q1', 't', 'x', '{}', 1)"
        )
    pg_conn.rollback()
