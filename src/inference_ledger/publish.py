"""Write -> audit -> publish: COPY into `staging`, the data-quality gate, then one transaction
replaces the run's periods in `marts`. A failure anywhere leaves `marts` as it was."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta

from psycopg2 import sql

from inference_ledger import audit, contracts, faults, lake
from inference_ledger import close as closing
from inference_ledger.db import connect, locks
from inference_ledger.db.copy import copy_parquet, truncate
from inference_ledger.periods import Quarter, months_between, quarter_labels
from inference_ledger.quality.gate import staging_gate
from inference_ledger.run.context import MARTS, RunContext
from inference_ledger.run.store import RunStateError, RunStore

log = logging.getLogger(__name__)

# One lock for everything that writes marts or closes periods: overlapping runs publish one
# after the other, and a close or reopen never lands in the middle of a publish.
PUBLISH_LOCK_KEY = closing.PUBLISH_LOCK_KEY
CONTROL_COLUMNS = ["table_name", "period_label", "currency", "amount", "row_count"]


@dataclass
class PublishOutcome:
    rows: dict[str, int]
    checks: int
    warnings: int


def _period_filter(
    mart: str, start: date, end: date, closed: list[str]
) -> tuple[sql.Composable, tuple]:
    """The run's periods of a mart, less the closed quarters (closed periods do not move)."""
    col = sql.Identifier(contracts.period_column(mart))
    if contracts.period_column(mart) == "period_label":
        open_labels = [q for q in quarter_labels(start, end) if q not in closed]
        return sql.SQL("{} = ANY(%s)").format(col), (open_labels,)
    quarter_of = sql.SQL("to_char({}, 'YYYY') || '-Q' || to_char({}, 'Q')").format(col, col)
    return sql.SQL("{c} >= %s AND {c} < %s AND NOT ({q} = ANY(%s))").format(c=col, q=quarter_of), (
        start,
        end,
        closed,
    )


class ClosedPeriodsChanged(ValueError):
    """Periods were closed or reopened between the run's aggregate and publish steps."""


def closed_periods(conn) -> list[str]:
    return closing.closed_labels(conn)


def stage(ctx: RunContext, conn) -> dict[str, int]:
    """The run's marts and control totals (Parquet under the run) COPYed into the emptied
    staging tables, streamed from the files (binary COPY where every column has an exact
    binary form): no Spark job, no CSV on disk. One transaction, committed at the end."""
    rows = {}
    truncate(conn, "staging", *MARTS, "control_totals")
    for mart in MARTS:
        cols = [c.name for c in contracts.columns("marts", mart)]
        rows[mart] = copy_parquet(
            conn, "staging", mart, cols, lake.run_path(ctx.lake_dir, ctx.run_id, f"marts/{mart}")
        )
    copy_parquet(
        conn,
        "staging",
        "control_totals",
        CONTROL_COLUMNS,
        lake.run_path(ctx.lake_dir, ctx.run_id, "control_totals"),
    )
    conn.commit()
    return rows


def replace_periods(conn, ctx: RunContext, start: date, end: date) -> dict[str, int]:
    """One transaction: for each mart delete the run's periods and insert the staged rows."""
    published = {}
    closed = closed_periods(conn)
    skipped = [q for q in quarter_labels(start, end) if q in closed]
    if skipped:
        # Their late changes, if any, are in the staged adjustment rows of the open periods.
        log.info("closed period(s) %s stay as closed", ", ".join(skipped))
    with conn.cursor() as cur:
        for mart in MARTS:
            cols = sql.SQL(", ").join(
                sql.Identifier(c.name) for c in contracts.columns("marts", mart)
            )
            where, params = _period_filter(mart, start, end, closed)
            cur.execute(
                sql.SQL("DELETE FROM marts.{} WHERE ").format(sql.Identifier(mart)) + where, params
            )
            cur.execute(
                sql.SQL("INSERT INTO marts.{t} ({c}) SELECT {c} FROM staging.{t} WHERE ").format(
                    t=sql.Identifier(mart), c=cols
                )
                + where,
                params,
            )
            published[mart] = cur.rowcount
            cur.execute(
                sql.SQL(
                    """INSERT INTO audit.published_periods (table_name, period_value, run_id, published_at, row_count)
                       SELECT %s, p::text, %s, now(), count(*) FROM (SELECT {col} AS p FROM marts.{t} WHERE """
                ).format(col=sql.Identifier(contracts.period_column(mart)), t=sql.Identifier(mart))
                + where
                + sql.SQL(
                    """) x GROUP BY p
                       ON CONFLICT (table_name, period_value) DO UPDATE
                       SET run_id = EXCLUDED.run_id, published_at = EXCLUDED.published_at,
                           row_count = EXCLUDED.row_count"""
                ),
                (mart, ctx.run_id, *params),
            )
        audit.record_period_inputs(
            cur, ctx.run_id, [q for q in quarter_labels(start, end) if q not in closed]
        )
        replace_period_calendar(cur)
    faults.checkpoint("publish:in_transaction")
    conn.commit()
    return published


# The span of everything the marts hold, whichever run published it (closed periods included).
MARTS_SPAN = """
WITH spans AS (
    SELECT min(period_start) AS first_day, max(period_end) AS end_day
    FROM marts.quarterly_summary
    UNION ALL
    SELECT min(period_start), max(period_end) FROM marts.revshare_reconciliation
    UNION ALL
    SELECT min(usage_date), max(usage_date) + 1 FROM marts.inference_spend_daily
    UNION ALL
    SELECT min(usage_month), max(usage_month) + 1 FROM marts.unit_cost_monthly
)
SELECT min(first_day), max(end_day) FROM spans
"""


def replace_period_calendar(cur) -> int:
    """Rewrite marts.period_calendar, in the publish transaction, from periods.py (the owner of
    the fiscal rule): every month of every calendar quarter the marts hold, without gaps."""
    cur.execute(MARTS_SPAN)
    first, end = cur.fetchone()
    cur.execute("DELETE FROM marts.period_calendar")
    if first is None:
        return 0
    months = months_between(Quarter.of(first).start, Quarter.of(end - timedelta(days=1)).end)
    names = [c.name for c in contracts.columns("marts", "period_calendar")]
    insert = sql.SQL("INSERT INTO marts.period_calendar ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.Placeholder() * len(names)),
    )
    cur.executemany(insert, [[m.row()[n] for n in names] for m in months])
    return len(months)


def publish(ctx: RunContext, url: str) -> PublishOutcome:
    """Stage, audit and publish the run's marts. Database and Parquet only: no Spark session."""
    store = RunStore(url, ctx.run_id)
    start, end = store.range()
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            locks.take(cur, PUBLISH_LOCK_KEY, "another run is publishing; waiting for it to finish")
        conn.commit()
        used = store.closed_periods_used()
        if used is None:
            raise RunStateError(
                f"run {ctx.run_id} has no aggregate recorded: nothing to publish (aggregate first)"
            )
        now = closed_periods(conn)
        if used != now:
            raise ClosedPeriodsChanged(
                f"periods were closed or reopened after this run aggregated (closed then: "
                f"{', '.join(used) or 'none'}; now: {', '.join(now) or 'none'}); nothing "
                "published: run again so adjustments are computed against the current close"
            )
        clock = time.monotonic()
        staged = stage(ctx, conn)
        ctx.timings["publish.stage"] = time.monotonic() - clock
        faults.checkpoint("publish:after_stage")
        # Records every result, then raises QualityGateFailed on a critical failure.
        staging_gate(ctx, url, list(MARTS), conn)
        replace_periods(conn, ctx, start, end)
        # The run's lake and ingest suites count too: the outcome speaks for the whole gate.
        checks, warnings = audit.dq_counts(conn, ctx.run_id)
        return PublishOutcome(rows=staged, checks=checks, warnings=warnings)
    finally:
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock_all()")
        conn.commit()
        conn.close()
