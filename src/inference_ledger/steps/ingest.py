"""The ingest step: landing folder -> lake, with every file and row accounted for.

`plan_ingest` decides what this run reads (the export runs found by their manifests, the
finance feeds and usage pages of the run's sources, and on an incremental night what is left
alone because a succeeded run read it unchanged); `ingest_landing` reads it; `IngestStep`
records the accounting, the quarantine and the failed months, then passes the input-files gate.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import SparkSession

from inference_ledger import audit, lake
from inference_ledger.db import connection
from inference_ledger.db.copy import copy_parquet
from inference_ledger.ingest import exports, finance, usage
from inference_ledger.ingest import records as R
from inference_ledger.ingest.landing import named, nothing_to_ingest, unclaimed
from inference_ledger.run import plan
from inference_ledger.run.context import SOURCE_FEEDS, SOURCES, RunContext
from inference_ledger.run.runner import Run, Step
from inference_ledger.steps.ingest_billing import (
    billing_months_to_read,
    ingest_billing,
    ingest_contract_commitments,
)
from inference_ledger.steps.ingest_finance import ingest_finance
from inference_ledger.steps.ingest_usage import UsageRead, ingest_usage, usage_files_to_read
from inference_ledger.workload import WorkloadRules

log = logging.getLogger(__name__)

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
class IngestPlan:
    feeds: frozenset[str]
    finance_unchanged: bool
    export_runs: list[exports.ExportRun]
    billing_runs: list[exports.ExportRun]
    commitment_runs: list[exports.ExportRun]
    usage_files: list[Path]
    usage_read: UsageRead | None
    # Accounting rows of files left alone (named datasets, unchanged billing months).
    skipped: list[dict] = field(default_factory=list)


def plan_ingest(spark: SparkSession, ctx: RunContext) -> IngestPlan:
    landing = ctx.landing
    if not landing.is_dir():
        raise R.InputError(f"landing folder {landing} does not exist")
    unknown = sorted(set(ctx.sources) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown ingest sources {unknown}: expected some of {SOURCES}")
    feeds = frozenset(f for source in ctx.sources for f in SOURCE_FEEDS[source])
    # Export runs are found by their manifests (any depth) before anything is read: a full
    # ingest of a landing with nothing ingestible stops here, saying what the landing holds.
    # (Unchanged files count as found: an incremental night with nothing new is no error.)
    all_runs = exports.discover_runs(landing) if "billing" in ctx.sources else []
    usage_files = usage.usage_files(landing) if "usage" in ctx.sources else []
    if set(ctx.sources) == set(SOURCES) and not (
        all_runs or usage_files or any(finance.feed_files(landing, name) for name in feeds)
    ):
        raise nothing_to_ingest(landing)
    # Exports of other datasets (amortized cost, price sheets, reservations) are named, not read.
    not_read = [
        named(p, run.source, run.not_read_reason)
        for run in all_runs
        if run.not_read_reason
        for p in run.claimed_files
    ]
    commitment_runs = [r for r in all_runs if r.dataset == exports.CONTRACT_COMMITMENT]
    cost_runs = [r for r in all_runs if not r.not_read_reason and r not in commitment_runs]
    # Billing: month-to-date runs of every dialect; the newest good run per (scope, month) wins.
    billing_runs, unchanged = billing_months_to_read(spark, ctx, cost_runs)
    return IngestPlan(
        feeds=feeds,
        finance_unchanged=_finance_unchanged(ctx),
        export_runs=all_runs,
        billing_runs=billing_runs,
        commitment_runs=commitment_runs,
        usage_files=usage_files,
        usage_read=usage_files_to_read(spark, ctx, usage_files),
        skipped=not_read + unchanged,
    )


def _finance_unchanged(ctx: RunContext) -> bool:
    """Incremental ingest: the finance tables in the lake are current (run/plan.py)."""
    if not ctx.known_files:
        return False
    root = ctx.landing / "finance"
    current = {str(p): R.sha256_file(p) for p in root.glob("*/*") if p.is_file()}
    return plan.finance_unchanged(str(root), current, ctx.known_files)


def ingest_landing(
    spark: SparkSession, ctx: RunContext, rules: WorkloadRules | None = None
) -> list[dict]:
    """Landing -> lake for every source of the run, planned and read at once (no audit
    records). Returns per-file accounting rows."""
    todo = _input_errors(plan_ingest, spark, ctx)
    return _input_errors(_read, spark, ctx, todo, rules or WorkloadRules.load())


def _input_errors(fn, *args):
    """Spark's error for an unreadable input file, as the InputError naming the file."""
    try:
        return fn(*args)
    except Exception as exc:
        unreadable = R.input_error_from_spark(exc)
        if unreadable is not None:
            raise unreadable from exc
        raise


def _read(
    spark: SparkSession, ctx: RunContext, todo: IngestPlan, rules: WorkloadRules
) -> list[dict]:
    clock = time.perf_counter()
    # FX first: every other money column converts with it.
    fx, accounting = ingest_finance(spark, ctx, todo.feeds, todo.finance_unchanged)
    clock = _lap(ctx, "ingest.finance", clock)
    accounting += todo.skipped
    accounting += ingest_billing(spark, ctx, todo.billing_runs, fx, rules)
    if "billing" in ctx.sources:
        accounting += ingest_contract_commitments(spark, ctx, todo.commitment_runs, fx)
    clock = _lap(ctx, "ingest.billing", clock)
    accounting += ingest_usage(spark, ctx, todo.usage_files, todo.usage_read)
    _lap(ctx, "ingest.usage", clock)
    # Every other file under the landing folder is named (accounting row + log warning).
    claimed = {r["source_file"] for r in accounting}
    claimed |= {str(p) for r in todo.export_runs for p in r.claimed_files}
    accounting += unclaimed(ctx.landing, claimed, ctx.sources)
    return accounting


def _lap(ctx: RunContext, name: str, since: float) -> float:
    now = time.perf_counter()
    ctx.timings[name] = round(now - since, 3)
    log.info("%s: %.1f s", name, now - since)
    return now


def planned_bytes(plan: IngestPlan) -> int:
    """What the billing, commitment and usage files the plan reads with Spark hold, uncompressed
    (`spark.uncompressed_bytes`); finance feeds are small and read without Spark where they are."""
    from inference_ledger.spark import uncompressed_bytes

    runs = [*plan.billing_runs, *plan.commitment_runs]
    usage = plan.usage_read.files if plan.usage_read else plan.usage_files
    paths = {p for r in runs for p, _ in r.blobs} | set(usage)
    return sum(
        uncompressed_bytes(p.stat().st_size, p.suffix in (".gz", ".parquet"))
        for p in paths
        if p.is_file()
    )


class IngestStep(Step[IngestPlan, list[dict]]):
    """Safe to retry within a run: what an earlier attempt recorded is cleared first.
    Incremental: what a succeeded run already ingested unchanged is not read again."""

    name = "ingest"
    writes_lake = True

    def __init__(self, incremental: bool = True, rules: WorkloadRules | None = None):
        self.incremental = incremental
        self.rules = rules

    def plan(self, run: Run) -> IngestPlan:
        if self.incremental:
            with connection(run.url) as conn:
                run.ctx.known_files = audit.ingested_files(conn)
        return _input_errors(plan_ingest, run.spark, run.ctx)

    def input_bytes(self, run: Run, plan: IngestPlan) -> int:
        return planned_bytes(plan)

    def execute(self, run: Run, plan: IngestPlan) -> list[dict]:
        # A retry of the step starts from an empty quarantine.
        lake.delete(run.spark, lake.run_path(run.ctx.lake_dir, run.ctx.run_id, "quarantine"))
        rules = self.rules or WorkloadRules.load()
        return _input_errors(_read, run.spark, run.ctx, plan, rules)

    def record(self, run: Run, plan: IngestPlan, result: list[dict]) -> None:
        ctx = run.ctx
        run.store.record_failed_months(ctx.failed_months)
        with connection(run.url) as conn:
            audit.clear_ingest(conn, ctx.run_id)
            audit.record_billing_control_totals(conn, ctx.run_id, ctx.billing_control_totals)
            audit.record_input_files(conn, ctx.run_id, result)
            _record_quarantine(run, conn)

    def check_outputs(self, run: Run, plan: IngestPlan, result: list[dict]) -> None:
        from inference_ledger.quality import gate

        gate.input_files_gate(run.ctx, run.url, result)


def _record_quarantine(run: Run, conn) -> None:
    path = lake.run_path(run.ctx.lake_dir, run.ctx.run_id, "quarantine")
    if not lake.exists(run.spark, path):
        return
    copy_parquet(
        conn,
        "audit",
        "quarantine",
        QUARANTINE_COLUMNS,
        path,
        constants={"run_id": run.ctx.run_id},
        renamed={"path": "source_file"},
    )
    conn.commit()
