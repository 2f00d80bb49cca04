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
    as_of: date | None = None,
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO audit.runs (run_id, command, status, started_at, period_start, period_end,
                                       landing_dir, spark_master, as_of)
               VALUES (%s, %s, 'running', now(), %s, %s, %s, %s, coalesce(%s, current_date))
               ON CONFLICT (run_id) DO NOTHING""",
            (run_id, command, start, end, landing, spark_master, as_of),
        )
    conn.commit()


def finish_run(conn, run_id: str, error: str | None = None) -> bool:
    """Finish a running run; False (nothing changed) when it is not running."""
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE audit.runs SET status = %s, finished_at = now(), error = %s"
            " WHERE run_id = %s AND status = 'running'",
            ("failed" if error else "succeeded", error, run_id),
        )
        finished = cur.rowcount == 1
    conn.commit()
    return finished


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
            r.get("months_loaded"),
            r.get("months_quarantined"),
            bool(r.get("is_every_period", False)),
        )
        for r in rows
    ]
    with conn.cursor() as cur:
        execute_values(
            cur,
            """INSERT INTO audit.input_files (run_id, source, path, checksum_sha256, byte_count,
                   rows_read, rows_loaded, rows_quarantined, rows_superseded, rows_deduplicated,
                   is_skipped, warning, months_loaded, months_quarantined, is_every_period)
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


# The input files a period's figures rest on, whichever run read them (marts.period_status,
# the report's audit section). The current files of a source are those the newest run that
# looked at that source recorded (read or skipped as unchanged) in the same landing; each one
# counts as its newest *reading*, so a rerun that reads nothing new keeps the period's audit.
# A file attaches to a quarter when it is an every-period input, loaded rows of the quarter,
# or (not superseded) quarantined rows of it; a file with no readable month but quarantined
# rows or a warning attaches to every quarter the run publishes.
_PERIOD_INPUTS_SQL = """
WITH readings AS (
    SELECT f.*, r.started_at
    FROM audit.input_files f
    JOIN audit.runs r USING (run_id)
    WHERE (r.status = 'succeeded' OR r.run_id = %(run_id)s)
      AND r.landing_dir = (SELECT landing_dir FROM audit.runs WHERE run_id = %(run_id)s)
), newest_look AS (
    SELECT DISTINCT ON (source) source, run_id
    FROM readings
    ORDER BY source, started_at DESC, run_id DESC
), current_files AS (
    SELECT rd.path
    FROM readings rd
    JOIN newest_look n USING (source, run_id)
), latest AS (
    SELECT DISTINCT ON (rd.path) rd.*
    FROM readings rd
    JOIN current_files c USING (path)
    WHERE NOT rd.is_skipped
    ORDER BY rd.path, rd.started_at DESC, rd.run_id DESC
), quarters AS (
    SELECT unnest(%(quarters)s::text[]) AS period_label
)
INSERT INTO audit.period_inputs (period_label, path, source, read_by_run_id, published_by_run_id)
SELECT q.period_label, l.path, l.source, l.run_id, %(run_id)s
FROM latest l
CROSS JOIN quarters q
WHERE l.is_every_period
   OR EXISTS (
        SELECT FROM unnest(l.months_loaded) AS m(month)
        WHERE left(m.month, 4) || '-Q' || ((substr(m.month, 6, 2)::int + 2) / 3) = q.period_label)
   OR (l.rows_superseded = 0 AND EXISTS (
        SELECT FROM unnest(l.months_quarantined) AS m(month)
        WHERE left(m.month, 4) || '-Q' || ((substr(m.month, 6, 2)::int + 2) / 3) = q.period_label))
   OR (coalesce(cardinality(l.months_loaded), 0) = 0
       AND coalesce(cardinality(l.months_quarantined), 0) = 0
       AND l.rows_superseded = 0
       AND (l.rows_quarantined > 0 OR l.warning IS NOT NULL))
"""


def record_period_inputs(cur, run_id: str, quarters: list[str]) -> None:
    """Rewrite the input files each of `quarters` rests on, in the caller's (publish)
    transaction: the period's audit moves with its figures and with nothing else."""
    cur.execute("DELETE FROM audit.period_inputs WHERE period_label = ANY(%s)", (quarters,))
    cur.execute(_PERIOD_INPUTS_SQL, {"run_id": run_id, "quarters": quarters})
