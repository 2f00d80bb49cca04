"""The `audit` schema: runs, input files, quarantine, data-quality results."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date

from psycopg2.extras import execute_values

from inference_ledger.quality.results import CheckResult


def start_run(
    conn,
    run_id: str,
    command: str,
    landing: str | None,
    spark_master: str,
    start: date | None,
    end: date | None,
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO audit.runs (run_id, command, status, started_at, period_start, period_end,
                                       landing_dir, spark_master)
               VALUES (%s, %s, 'running', now(), %s, %s, %s, %s)
               ON CONFLICT (run_id) DO NOTHING""",
            (run_id, command, start, end, landing, spark_master),
        )
    conn.commit()


def set_run_range(conn, run_id: str, start: date, end: date) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE audit.runs SET period_start = %s, period_end = %s WHERE run_id = %s",
            (start, end, run_id),
        )
    conn.commit()


def finish_run(conn, run_id: str, error: str | None = None) -> None:
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE audit.runs SET status = %s, finished_at = now(), error = %s WHERE run_id = %s",
            ("failed" if error else "succeeded", error, run_id),
        )
    conn.commit()


def ingested_files(conn) -> dict[str, str]:
    """path -> checksum of each file as last ingested by a run that succeeded."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT DISTINCT ON (f.path) f.path, f.checksum_sha256
               FROM audit.input_files f JOIN audit.runs r USING (run_id)
               WHERE r.status = 'succeeded'
               ORDER BY f.path, f.recorded_at DESC"""
        )
        rows = dict(cur.fetchall())
    conn.commit()
    return rows


def clear_ingest(conn, run_id: str) -> None:
    """Forget a previous attempt's ingest records of this run (a retried task)."""
    with conn.cursor() as cur:
        cur.execute("DELETE FROM audit.quarantine WHERE run_id = %s", (run_id,))
        cur.execute("DELETE FROM audit.input_files WHERE run_id = %s", (run_id,))


def record_billing_control_totals(conn, run_id: str, totals: list[dict]) -> None:
    values = [
        (run_id, t["billing_month"], t["billing_currency"], t["rows_loaded"], t["billed_cost_in"],
         t["billed_cost_lake"], t["billed_cost_usd"])
        for t in totals
    ]  # fmt: skip
    with conn.cursor() as cur:
        cur.execute("DELETE FROM audit.billing_control_totals WHERE run_id = %s", (run_id,))
        execute_values(
            cur,
            """INSERT INTO audit.billing_control_totals (run_id, billing_month, currency,
                   rows_loaded, billed_cost_in, billed_cost_lake, billed_cost_usd) VALUES %s""",
            values,
        )


def record_input_files(conn, run_id: str, rows: Iterable[dict]) -> None:
    values = [
        (
            run_id,
            r["source"],
            r["source_file"],
            r["checksum_sha256"],
            r["byte_count"],
            r["rows_read"],
            r["rows_loaded"],
            r["rows_quarantined"],
            r["rows_superseded"],
            r["rows_deduplicated"],
            bool(r.get("is_skipped", False)),
            r.get("warning"),
        )
        for r in rows
    ]
    with conn.cursor() as cur:
        execute_values(
            cur,
            """INSERT INTO audit.input_files (run_id, source, path, checksum_sha256, byte_count,
                   rows_read, rows_loaded, rows_quarantined, rows_superseded, rows_deduplicated,
                   is_skipped, warning)
               VALUES %s""",
            values,
            page_size=1000,
        )
    conn.commit()


def record_dq_results(conn, run_id: str, results: list[CheckResult]) -> None:
    values = [
        (
            run_id,
            r.suite,
            r.expectation,
            r.column_name,
            r.severity,
            r.success,
            r.observed_value,
            json.dumps(r.details),
            r.check_name,
            r.checked_at,
        )
        for r in results
    ]
    with conn.cursor() as cur:
        # A retried step validates again: its suites' earlier results for the run are replaced.
        cur.execute(
            "DELETE FROM audit.dq_results WHERE run_id = %s AND suite = ANY(%s)",
            (run_id, sorted({r.suite for r in results})),
        )
        execute_values(
            cur,
            """INSERT INTO audit.dq_results (run_id, suite, expectation, column_name, severity, success,
                                             observed_value, details, check_name, checked_at)
               VALUES %s""",
            values,
        )
    conn.commit()


def dq_counts(conn, run_id: str) -> tuple[int, int]:
    """(checks, failed warnings) recorded for a run by all its suites."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT count(*), count(*) FILTER (WHERE NOT success AND severity = 'warning')
               FROM audit.dq_results WHERE run_id = %s""",
            (run_id,),
        )
        checks, warnings = cur.fetchone()
    conn.commit()
    return int(checks), int(warnings)
