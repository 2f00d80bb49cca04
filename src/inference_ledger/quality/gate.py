"""The gate at each step: validate, record every result in audit, render the run's Data Docs
(at once, or once at the end of a driver that runs every gate: `flush_docs`), then stop the run if
a critical expectation failed (nothing published, marts unchanged)."""

from __future__ import annotations

import logging
import time
from datetime import date

from pyspark.sql import SparkSession

from inference_ledger import audit
from inference_ledger.db import connect
from inference_ledger.quality.config import QualityConfig
from inference_ledger.quality.input_files import validate_input_files
from inference_ledger.quality.lake_suites import validate_lake
from inference_ledger.quality.mart_suites import validate_staging
from inference_ledger.quality.results import CheckResult, QualityGateFailed, critical_failures
from inference_ledger.quality.runner import SuiteOutcome, build_data_docs

log = logging.getLogger(__name__)


def _verdict(
    ctx, url: str, outcomes: list[SuiteOutcome], started: float, gate: str, conn=None
) -> list[CheckResult]:
    results = [c for o in outcomes for c in o.checks]
    own = conn is None
    conn = conn or connect(url)
    try:
        audit.record_dq_results(conn, ctx.run_id, results)
    finally:
        if own:
            conn.close()
    failures = critical_failures(results)
    _docs(ctx, outcomes, failed=bool(failures))
    log.info(
        "data quality %s: %d checks, %d failed, %.1fs",
        ", ".join(sorted({o.suite.name for o in outcomes})),
        len(results),
        sum(1 for r in results if not r.success),
        time.monotonic() - started,
    )
    # The run's own clock (RunContext.timings): the benchmark reports the gates from it.
    ctx.timings[f"gate.{gate}"] = ctx.timings.get(f"gate.{gate}", 0.0) + (
        time.monotonic() - started
    )
    if failures:
        raise QualityGateFailed(failures)
    return results


def _docs(ctx, outcomes: list[SuiteOutcome], failed: bool) -> None:
    """Render the gate's Data Docs pages now, or keep them for `flush_docs` if the driver defers
    them; a failed gate renders at once (with any kept before it): the run stops there."""
    ctx.docs_pending.extend(outcomes)
    if failed or not ctx.docs_deferred:
        flush_docs(ctx)


def flush_docs(ctx) -> None:
    """Render the run's Data Docs pages of every gate not rendered yet (each site build reads
    the file context and its stores again: ~0.7 s a build for a small run)."""
    pending, ctx.docs_pending = ctx.docs_pending, []
    if pending:
        started = time.monotonic()
        build_data_docs(ctx.settings.home, ctx.run_id, pending, ctx.settings.data_docs_keep_runs)
        ctx.timings["data_docs"] = ctx.timings.get("data_docs", 0.0) + time.monotonic() - started


def input_files_gate(ctx, url: str, accounting: list[dict]):
    """After ingest: the quarantine rate of every file read (no Spark job: rows in hand)."""
    started, cfg = time.monotonic(), QualityConfig.load()
    return _verdict(ctx, url, validate_input_files(accounting, cfg), started, "input_files_gate")


def lake_gate(spark: SparkSession, ctx, url: str, start: date, end: date):
    """After aggregate, before publish: the canonical lake tables of the run's range."""
    started, cfg = time.monotonic(), QualityConfig.load()
    outcomes = validate_lake(spark, ctx.lake_dir, start, end, ctx.as_of, cfg)
    return _verdict(ctx, url, outcomes, started, "lake_gate")


def staging_gate(ctx, url: str, marts: list[str], conn):
    """After COPY into staging, before the publishing transaction."""
    started, cfg = time.monotonic(), QualityConfig.load()
    outcomes = validate_staging(url, marts, conn, cfg)
    return _verdict(ctx, url, outcomes, started, "staging_gate", conn=conn)
