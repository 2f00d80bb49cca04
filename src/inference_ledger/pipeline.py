"""A whole ledger run in one process, as `ledger run` and `ledger demo` drive it: open the run,
then ingest -> aggregate + reconcile -> publish (stage, audit, publish), holding the lake lock
throughout, and finish it once with how it ended.

The spark-submit jobs (and so the Airflow DAGs) and the benchmark run the same steps
(inference_ledger.steps) one at a time through the same runner (run/runner.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from inference_ledger import faults, progress, spark
from inference_ledger.db import database_url
from inference_ledger.publish import PublishOutcome
from inference_ledger.run.context import RunContext, new_run_id
from inference_ledger.run.runner import Run
from inference_ledger.run.store import lake_lock
from inference_ledger.settings import load_settings

log = logging.getLogger(__name__)


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
) -> Run:
    """The run, recorded as running unless a driver already recorded it (the DAG's `prepare`
    task before its jobs)."""
    settings = load_settings()
    ctx = RunContext(
        run_id=run_id or new_run_id(),
        landing=Path(landing).resolve(),
        start=start,
        end=end,
        settings=settings,
    )
    if as_of:
        ctx.as_of = as_of
    run = Run(ctx, database_url(settings))
    run.store.open(command, str(ctx.landing), settings.spark_master, start, end, as_of=ctx.as_of)
    return run


def run_pipeline(
    landing: Path,
    start: date | None = None,
    end: date | None = None,
    *,
    command: str = "run",
    as_of: date | None = None,
    incremental: bool = True,
) -> RunResult:
    from inference_ledger.quality.gate import flush_docs
    from inference_ledger.quality.runner import gx_module
    from inference_ledger.steps.aggregate import AggregateStep
    from inference_ledger.steps.ingest import IngestStep
    from inference_ledger.steps.publish import PublishStep

    # The JVM starts (~5 s) while the run's database is prepared and GX is imported (~3 s):
    # in a fresh process these were one after the other, before the first Spark job.
    spark.start_in_background()
    run = prepare(landing, start, end, command, as_of)
    faults.checkpoint("pipeline:after_prepare")
    gx_module()
    # One Data Docs site build for the run's three gates, not one after each.
    run.ctx.docs_deferred = True
    # The steps take the lake lock again (it is re-entrant): held here, no other run's
    # ingest can slip in between this run's ingest and aggregate.
    with lake_lock(run.url):
        try:
            accounting = IngestStep(incremental=incremental).run(run)
            progress.ingested(accounting)
            faults.checkpoint("pipeline:after_ingest")
            AggregateStep().run(run)
            progress.stage("aggregate")
            faults.checkpoint("pipeline:after_aggregate")
            outcome = PublishStep().run(run)
            progress.stage("audit (GX) and publish", f"{sum(outcome.rows.values())} mart rows")
        except BaseException as exc:
            flush_docs(run.ctx)
            run.store.finish(error=f"{type(exc).__name__}: {exc}")
            raise
        flush_docs(run.ctx)
        run.store.finish()
        s, e = run.store.range()
    return _result(run, accounting, outcome, s, e)


def _result(run: Run, accounting: list[dict], outcome: PublishOutcome, s, e) -> RunResult:
    total = lambda k: sum(int(r[k]) for r in accounting)  # noqa: E731
    return RunResult(
        run_id=run.ctx.run_id,
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
