"""The steps of a ledger run: ingest -> aggregate + reconcile -> stage -> audit -> publish.

The CLI calls `run_pipeline`; the spark-submit jobs (and so the Airflow DAGs) and the benchmark
call the same steps one at a time. A run's state is the run store's (run/store.py): every step
records through it, and the steps that write the lake hold its lake lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from inference_ledger import audit, faults, lake, progress, steps
from inference_ledger.db import connect, database_url
from inference_ledger.db.copy import copy_parquet
from inference_ledger.publish import PublishOutcome, publish
from inference_ledger.quality import gate as quality_gate
from inference_ledger.run.store import LAKE_LOCK_KEY, RunStore, lake_lock
from inference_ledger.settings import load_settings
from inference_ledger.spark import get_spark

log = logging.getLogger(__name__)

# The lake lock's key (run/store.py), under the name the reliability tests know.
RUN_LOCK_KEY = LAKE_LOCK_KEY

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
    """The run's context; the run recorded as running unless a driver already recorded it
    (the DAG's `prepare` task before its jobs). Returns (ctx, url)."""
    settings = load_settings()
    url = database_url(settings)
    ctx = steps.RunContext(
        run_id=run_id or steps.new_run_id(),
        landing=Path(landing).resolve(),
        start=start,
        end=end,
        settings=settings,
    )
    if as_of:
        ctx.as_of = as_of
    store(ctx, url).open(
        command, str(ctx.landing), settings.spark_master, start, end, as_of=ctx.as_of
    )
    return ctx, url


def store(ctx: steps.RunContext, url: str) -> RunStore:
    return RunStore(url, ctx.run_id, str(ctx.lake_dir))


def ingest_step(ctx: steps.RunContext, url: str, incremental: bool = True) -> list[dict]:
    """Safe to retry within a run: what an earlier attempt recorded is cleared first.
    Incremental: billing months whose files were all ingested before are not read again."""
    spark = get_spark()
    run = store(ctx, url)
    with run.lake_lock():
        lake.delete(spark, lake.run_path(ctx.lake_dir, ctx.run_id, "quarantine"))
        conn = connect(url)
        try:
            if incremental:
                ctx.known_files = audit.ingested_files(conn)
            accounting = steps.ingest(spark, ctx)
            run.record_failed_months(spark, ctx.failed_months)
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
    run = store(ctx, url)
    with run.lake_lock():
        # The lake suites check the inputs before anything is computed from them.
        quality_gate.lake_gate(spark, ctx, url, *steps.resolve_range(spark, ctx))
        counts = steps.aggregate(spark, ctx)
        start, end = steps.run_range(spark, ctx)
    run.set_range(start, end)
    return counts


def publish_step(ctx: steps.RunContext, url: str) -> PublishOutcome:
    """Publish; then, if ingest left billing months out (e.g. a missing FX rate), fail the run
    naming them: the other months are published, those keep their previous figures."""
    spark = get_spark()
    outcome = publish(spark, ctx, url)
    failed = store(ctx, url).failed_months(spark)
    if failed:
        raise RunStore.failed_months_error(failed)
    return outcome


def finish(ctx: steps.RunContext, url: str, error: str | None = None) -> None:
    store(ctx, url).finish(error)


def one_run_at_a_time(url: str):
    """The lake lock (run/store.py) for a whole run: its steps take it again (re-entrant)."""
    return lake_lock(url)


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
