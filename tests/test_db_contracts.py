"""THE contract test: the live marts and staging tables equal schemas/marts/*.schema.json."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from psycopg2 import errors, sql

from inference_ledger import close, contracts, publish

MARTS = contracts.schema_names("marts")
STAGED = [name for name in MARTS if contracts.is_staged(name)]

COLUMN_COMMENTS = """
SELECT a.attname, col_description(a.attrelid, a.attnum)
FROM pg_attribute a
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

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
def test_mart_column_comments_are_the_contract_descriptions(pg_conn, name):
    expected = [
        (col, spec["description"])
        for col, spec in contracts.load_schema("marts", name)["properties"].items()
    ]
    assert _rows(pg_conn, COLUMN_COMMENTS, f"marts.{name}") == expected


def test_every_relation_and_column_of_marts_has_a_comment(pg_conn):
    """Tables and views alike, so a column added later cannot slip out undocumented."""
    relations = _rows(
        pg_conn,
        "SELECT c.relname, c.relkind, coalesce(obj_description(c.oid, 'pg_class'), '')"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'marts' AND c.relkind IN ('r', 'v', 'm') ORDER BY 1",
    )
    names = {r for r, _, _ in relations}
    # What 016 adds, and what was there before: the query does look at views.
    assert {"period_calendar", "fiscal_year_summary", "workload_share_monthly"} <= names
    assert {"revshare_reconciliation_legacy", "period_status"} <= names
    assert [r for r, _, comment in relations if not comment.strip()] == []
    missing = _rows(
        pg_conn,
        "SELECT c.relname || '.' || a.attname"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'marts' AND c.relkind IN ('r', 'v', 'm') AND a.attnum > 0"
        " AND NOT a.attisdropped"
        " AND coalesce(btrim(col_description(a.attrelid, a.attnum)), '') = '' ORDER BY 1",
    )
    assert missing == []


def test_legacy_view_keeps_the_old_names_with_the_same_values(pg_conn):
    props = contracts.load_schema("marts", "revshare_reconciliation")["properties"]
    assert contracts.renamed_columns("revshare_reconciliation") == {
        "variance_pct": "variance_ratio",
        "usage_estimate_variance_pct": "usage_estimate_variance_ratio",
    }
    comments = _rows(pg_conn, COLUMN_COMMENTS, "marts.revshare_reconciliation_legacy")
    assert comments[: len(props)] == [(c, spec["description"]) for c, spec in props.items()]
    assert comments[len(props) :] == [
        (
            "variance_pct",
            "Deprecated alias of variance_ratio: its name before migration 016, same value"
            " (a ratio, not a percent); use variance_ratio.",
        ),
        (
            "usage_estimate_variance_pct",
            "Deprecated alias of usage_estimate_variance_ratio: its name before migration 016,"
            " same value (a ratio, not a percent); use usage_estimate_variance_ratio.",
        ),
    ]
    with pg_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO marts.revshare_reconciliation (period_label, period_start, period_end,"
            " agreement_id, direction, counterparty, expected_usd, settled_usd, variance_usd,"
            " variance_ratio, status, is_adjustment, usage_estimate_variance_ratio)"
            " VALUES ('2099-Q1', '2099-01-01', '2099-04-01', 'PAY', 'payable', 'P', 280.00,"
            " 285.00, 5.00, 0.0178571429, 'matched', false, -0.0300000000)"
        )
        cur.execute(
            "SELECT variance_ratio, variance_pct, usage_estimate_variance_ratio,"
            " usage_estimate_variance_pct, settled_usd"
            " FROM marts.revshare_reconciliation_legacy WHERE period_label = '2099-Q1'"
        )
        assert cur.fetchall() == [
            (
                Decimal("0.0178571429"),
                Decimal("0.0178571429"),
                Decimal("-0.0300000000"),
                Decimal("-0.0300000000"),
                Decimal("285.00"),
            )
        ]
    pg_conn.rollback()


def test_a_snapshot_closed_before_the_rename_still_matches(pg_conn):
    """Closed-period snapshots keep the column names of their day; compare by the new name."""
    with pg_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO marts.revshare_reconciliation (period_label, period_start, period_end,"
            " agreement_id, direction, counterparty, variance_ratio, status, is_adjustment)"
            " VALUES ('2099-Q1', '2099-01-01', '2099-04-01', 'PAY', 'payable', 'P',"
            " 0.0178571429, 'matched', false)"
        )
        stored = close.snapshot(pg_conn, "2099-Q1")
        row = stored["revshare_reconciliation"][0]
        row["variance_pct"] = row.pop("variance_ratio")
        assert row["variance_pct"] == "0.0178571429"
        cur.execute(
            "INSERT INTO audit.closed_periods (period_label, closed_at, closed_by,"
            " snapshot_sha256, snapshot) VALUES ('2099-Q1', now(), 'test', 'x', %s::jsonb)",
            (json.dumps(stored),),
        )
        assert close.snapshot_matches(pg_conn, "2099-Q1")
        cur.execute(
            "UPDATE marts.revshare_reconciliation SET variance_ratio = 0.5"
            " WHERE period_label = '2099-Q1'"
        )
        assert not close.snapshot_matches(pg_conn, "2099-Q1")
    pg_conn.rollback()


def test_publish_writes_every_month_of_every_quarter_the_marts_hold(pg_conn):
    """A quarterly row for 2099-Q1 and a spend day in 2099-Q3: months 2099-01..2099-09, no gap."""
    with pg_conn.cursor() as cur:
        for table in MARTS:  # rolled back below
            cur.execute(sql.SQL("DELETE FROM marts.{}").format(sql.Identifier(table)))
        cur.execute(
            "INSERT INTO marts.quarterly_summary (period_label, period_start, period_end,"
            " fiscal_period_label, inference_spend_usd, revshare_paid_usd, revshare_received_usd,"
            " net_revshare_usd) VALUES ('2099-Q1', '2099-01-01', '2099-04-01', 'FY99-Q3', 0, 0,"
            " 0, 0)"
        )
        cur.execute(
            "INSERT INTO marts.inference_spend_daily (usage_date, provider, service_name, region,"
            " sku, model_id, token_direction, workload, billed_cost_usd, effective_cost_usd,"
            " month_status) VALUES ('2099-08-31', 'p', 's', 'r', 'k', '(none)', '(none)',"
            " 'inference', 1, 1, 'final')"
        )
        assert publish.replace_period_calendar(cur) == 9
        cur.execute(
            "SELECT month_start, month_end, month_label, quarter_label, half_label, year_label,"
            " fiscal_year_label, fiscal_quarter_label, fiscal_half_label"
            " FROM marts.period_calendar ORDER BY month_start"
        )
        rows = cur.fetchall()
        cur.execute("DELETE FROM marts.quarterly_summary")
        cur.execute("DELETE FROM marts.inference_spend_daily")
        assert publish.replace_period_calendar(cur) == 0
        cur.execute("SELECT count(*) FROM marts.period_calendar")
        assert cur.fetchone() == (0,)
    pg_conn.rollback()
    assert [r[2] for r in rows] == [f"2099-{m:02d}" for m in range(1, 10)]
    assert rows[0] == (
        date(2099, 1, 1),
        date(2099, 2, 1),
        "2099-01",
        "2099-Q1",
        "2099-H1",
        "2099",
        "FY99",
        "FY99-Q3",
        "FY99-H2",
    )
    assert rows[6] == (
        date(2099, 7, 1),
        date(2099, 8, 1),
        "2099-07",
        "2099-Q3",
        "2099-H2",
        "2099",
        "FY00",
        "FY00-Q1",
        "FY00-H1",
    )
    assert rows[8][:2] == (date(2099, 9, 1), date(2099, 10, 1))


@pytest.mark.parametrize("name", STAGED)
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
