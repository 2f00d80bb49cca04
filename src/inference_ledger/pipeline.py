"""One nightly run end to end: ingest -> aggregate + reconcile -> stage -> audit -> publish.

The CLI calls `run_pipeline`; the Airflow DAG calls the same steps one task each.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from inference_ledger import audit, faults, lake, progress, steps
from inference_ledger.db import connect, database_url, migrate
from inference_ledger.db.copy import copy_parquet
from inference_ledger.ingest.records import InputError
from inference_ledger.publish import PublishOutcome, publish
from inference_ledger.quality import gate as quality_gate
from inference_ledger.settings import load_settings
from inference_ledger.spark import get_spark

log = logging.getLogger(__name__)

# Runs share the lake (whole tables and month partitions are rewritten, Spark's `_temporary`
# folders would collide): a run ingests and aggregates only while no other run does.
# Publishing has its own lock (publish.PUBLISH_LOCK_KEY), shared with close and reopen.
RUN_LOCK_KEY = 7_420_002

QUARANTINE_COLUMNS = [
    "run_id",
    "source",
    "path",
    "line_number",
    "field",
    "reason",
    "raw_record",
    "period_month",
    "amount",
    "currency",
]


@dataclass
class RunResult:
    run_id: str
    start: date
    end: date
    files: int
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_superseded: int
    rows_deduplicated: int
    published: PublishOutcome
    # `path: why` of every input file that needs a look although its rows balance (a file no
    # manifest claims, a partial usage pull); also in audit.input_files.warning.
    file_warnings: tuple[str, ...] = ()


def prepare(
    landing: Path,
    start: date | None,
    end: date | None,
    command: str,
    as_of: date | None = None,
    run_id: str | None = None,
):
    """Database ready (migrated), run recorded as running. Returns (ctx, url)."""
    settings = load_settings()
    url = database_url(settings)
    migrate(url)
    ctx = steps.RunContext(
        run_id=run_id or steps.new_run_id(),
        landing=Path(landing).resolve(),
        start=start,
        end=end,
        settings=settings,
    )
    if as_of:
        ctx.as_of = as_of
    conn = connect(url)
    try:
        audit.start_run(
            conn,
            ctx.run_id,
            command,
            str(ctx.landing),
            settings.spark_master,
            start,
            end,
            as_of=ctx.as_of,
        )
    finally:
        conn.close()
    return ctx, url


def ingest_step(ctx: steps.RunContext, url: str, incremental: bool = True) -> list[dict]:
    """Safe to retry within a run: what an earlier attempt recorded is cleared first.
    Incremental: billing months whose files were all ingested before are not read again."""
    spark = get_spark()
    lake.delete(spark, lake.run_path(ctx.lake_dir, ctx.run_id, "quarantine"))
    lake.delete(spark, lake.run_path(ctx.lake_dir, ctx.run_id, "failed_months"))
    conn = connect(url)
    try:
        if incremental:
            ctx.known_files = audit.ingested_files(conn)
        accounting = steps.ingest(spark, ctx)
        if ctx.failed_months:
            # Kept with the run, so the publish step (maybe another process) fails the run.
            rows = [(m, ", ".join(v[:3])) for m, v in sorted(ctx.failed_months.items())]
            failed = spark.createDataFrame(rows, "billing_month string, reason string")
            lake.write_run_output(failed, ctx.lake_dir, ctx.run_id, "failed_months")
        audit.clear_ingest(conn, ctx.run_id)
        audit.record_billing_control_totals(conn, ctx.run_id, ctx.billing_control_totals)
        audit.record_input_files(conn, ctx.run_id, accounting)
        _record_quarantine(ctx, conn)
    finally:
        conn.close()
    quality_gate.input_files_gate(spark, ctx, url, accounting)
    return accounting


def _record_quarantine(ctx: steps.RunContext, conn) -> None:
    spark = get_spark()
    path = lake.run_path(ctx.lake_dir, ctx.run_id, "quarantine")
    if not lake.exists(spark, path):
        return
    copy_parquet(
        conn,
        "audit",
        "quarantine",
        QUARANTINE_COLUMNS,
        path,
        constants={"run_id": ctx.run_id},
        renamed={"path": "source_file"},
    )
    conn.commit()


def aggregate_step(ctx: steps.RunContext, url: str) -> dict[str, int]:
    spark = get_spark()
    # The lake suites check the inputs before anything is computed from them.
    quality_gate.lake_gate(spark, ctx, url, *steps.resolve_range(spark, ctx))
    counts = steps.aggregate(spark, ctx)
    start, end = steps.run_range(spark, ctx)
    conn = connect(url)
    try:
        audit.set_run_range(conn, ctx.run_id, start, end)
    finally:
        conn.close()
    return counts


def publish_step(ctx: steps.RunContext, url: str) -> PublishOutcome:
    """Publish; then, if ingest left billing months out (e.g. a missing FX rate), fail the run
    naming them: the other months are published, those keep their previous figures."""
    spark = get_spark()
    outcome = publish(spark, ctx, url)
    path = lake.run_path(ctx.lake_dir, ctx.run_id, "failed_months")
    if lake.exists(spark, path):
        failed = sorted(
            (r["billing_month"], r["reason"]) for r in spark.read.parquet(path).collect()
        )
        raise InputError(
            "billing: month(s) not loaded: " + "; ".join(f"{m}: {why}" for m, why in failed)
        )
    return outcome


def finish(ctx: steps.RunContext, url: str, error: str | None = None) -> None:
    conn = connect(url)
    try:
        audit.finish_run(conn, ctx.run_id, error)
    finally:
        conn.close()


@contextmanager
def one_run_at_a_time(url: str):
    """Hold the run lock for the block; a second run waits for it, saying so. The lock is the
    session's: a killed run's is released with its connection."""
    conn = connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", (RUN_LOCK_KEY,))
            if not cur.fetchone()[0]:
                log.warning("another run is in progress on this ledger; waiting for it to finish")
                cur.execute("SELECT pg_advisory_lock(%s)", (RUN_LOCK_KEY,))
        yield
    finally:
        conn.close()


def run_pipeline(
    landing: Path,
    start: date | None = None,
    end: date | None = None,
    *,
    command: str = "run",
    as_of: date | None = None,
    incremental: bool = True,
) -> RunResult:
    ctx, url = prepare(landing, start, end, command, as_of)
    faults.checkpoint("pipeline:after_prepare")
    with one_run_at_a_time(url):
        try:
            accounting = ingest_step(ctx, url, incremental=incremental)
            progress.ingested(accounting)
            faults.checkpoint("pipeline:after_ingest")
            aggregate_step(ctx, url)
            progress.stage("aggregate")
            faults.checkpoint("pipeline:after_aggregate")
            outcome = publish_step(ctx, url)
            progress.stage("audit (GX) and publish", f"{sum(outcome.rows.values())} mart rows")
        except BaseException as exc:
            finish(ctx, url, error=f"{type(exc).__name__}: {exc}")
            raise
        finish(ctx, url)
        s, e = steps.run_range(get_spark(), ctx)
    total = lambda k: sum(int(r[k]) for r in accounting)  # noqa: E731
    return RunResult(
        run_id=ctx.run_id,
        start=s,
        end=e,
        files=len(accounting),
        rows_read=total("rows_read"),
        rows_loaded=total("rows_loaded"),
        rows_quarantined=total("rows_quarantined"),
        rows_superseded=total("rows_superseded"),
        rows_deduplicated=total("rows_deduplicated"),
        published=outcome,
        file_warnings=tuple(
            f"{r['source_file']}: {r['warning']}" for r in accounting if r.get("warning")
        ),
    )
