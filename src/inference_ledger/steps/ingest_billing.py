"""The billing part of an ingest: the cost export runs of every dialect (the newest good run per
scope and month wins), FX-converted and checked line by line into the lake's `billing_lines`,
with the months that cannot load (a missing FX rate) left out and named, control totals between
input and lake, and the provider's FOCUS Contract Commitment deliveries."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from inference_ledger import lake
from inference_ledger.ingest import billing, exports
from inference_ledger.ingest import billing_summary as S
from inference_ledger.ingest import records as R
from inference_ledger.run import plan
from inference_ledger.run.context import RunContext
from inference_ledger.steps.accounting import (
    account,
    account_counted,
    empty_records,
    loaded,
    skipped,
)
from inference_ledger.workload import WorkloadRules

log = logging.getLogger(__name__)


def billing_months_to_read(
    spark: SparkSession, ctx: RunContext, runs: list[exports.ExportRun]
) -> tuple[list[exports.ExportRun], list[dict]]:
    """Incremental ingest: a billing month whose every blob (all scopes, all runs) a succeeded
    run already ingested with the same checksum, and whose lake partition exists, is not read
    again. Its files are recorded as skipped (no rows counted twice). Decided by run/plan.py."""
    if not ctx.known_files or not runs:
        return runs, []
    in_lake = {
        r[0]
        for r in lake.read_table(spark, ctx.lake_dir, "billing_lines")
        .select("billing_month")
        .distinct()
        .collect()
    }
    sums = {str(p): R.sha256_file(p) for r in runs for p, _ in r.blobs}
    by_month: dict[str, list[exports.ExportRun]] = {}
    for r in runs:
        by_month.setdefault(r.billing_month, []).append(r)
    months = [
        plan.BillingMonth(
            month,
            tuple(str(p) for r in month_runs for p, _ in r.blobs),
            any(r.missing_blobs for r in month_runs),
        )
        for month, month_runs in sorted(by_month.items())
    ]
    skip = plan.billing_months_to_skip(months, sums, ctx.known_files, in_lake)
    keep = [r for r in runs if r.billing_month not in skip]
    rows = [
        row
        for r in runs
        if r.billing_month in skip
        for row in skipped(r.source, [p for p, _ in r.blobs], sums)
    ]
    return keep, rows


def ingest_billing(
    spark: SparkSession,
    ctx: RunContext,
    runs: list[exports.ExportRun],
    fx: DataFrame,
    rules: WorkloadRules,
) -> list[dict]:
    """The chosen export runs -> lake `billing_lines`; returns their accounting.

    The files are scanned once: the checked records (the delivered row kept only where it is
    not loaded) are written under the run and counted in one aggregation of that Parquet (rows
    per file against the manifests, line numbers, per-file counts, control totals, lines
    lacking an FX rate); the quarantine is written from it, and the lake: large files' loaded
    month folders are moved into it (`_Checked.lake_ready`), other records' loaded rows written.
    Only where a run the manifest check rejects or a month without an FX rate changes the
    verdict of lines are files read again: those of that scope and month; the lake is then
    written from the records of every pass."""
    checked, runs = _checked_records(spark, ctx, runs, fx, rules)
    for run in runs:
        if run.rejected_reason:
            log.warning(
                "billing run %s (%s) rejected: %s",
                run.run_id,
                run.billing_month,
                run.rejected_reason,
            )
    records = checked.records()
    if records is None:
        return []
    try:
        done = billing.numbered(records, S.first_ids(checked.groups))
        files = [p for r in runs for p, _ in r.blobs]
        accounting = account_counted(ctx, "billing", done, files, S.file_counts(checked.groups))
        ready = checked.lake_ready()
        if ready:
            # The loaded rows as written become the lake's: not read back and encoded again.
            lake.replace_partitions(spark, ready, ctx.lake_dir, "billing_lines")
        else:
            lake.write_table(loaded(done), ctx.lake_dir, "billing_lines")
        _billing_control_totals(spark, ctx, S.loaded_totals(checked.groups))
    finally:
        checked.release()
    return accounting


# The checked records of each pass are written once under the run and read back, as usage's
# are: the summary reads a few columns of that Parquet, the quarantine its other rows, and the
# lake its loaded rows. Cheaper than caching them (1M lines, warm, alternated: 24.0-24.6 s
# against 26.1-28.4 s); deleted once the ingest is done. Large files' records are written in
# the lake's layout (a folder per status and month), every pass of the ingest alike, so that
# the loaded months' folders can become the lake's (`billing.reads_apart`).
_RECORDS = "work/billing_records"


@dataclass
class _Checked:
    """Checked billing records in parts written under the run, and the summary of their rows.
    A part checked again (its files' verdicts changed) takes those files' place in the parts
    before it."""

    spark: SparkSession
    ctx: RunContext
    frames: list[DataFrame] = field(default_factory=list)
    groups: list[S.Group] = field(default_factory=list)
    parts: int = 0
    apart: bool = False  # the passes' records are written in the lake's layout

    def replace(self, files: set[str], records: DataFrame | None, read: list[Path]) -> None:
        gone = sorted(files)
        self.frames = [df.filter(~F.col("source_file").isin(gone)) for df in self.frames]
        self.groups = [g for g in self.groups if g.source_file not in files]
        if records is None:
            return
        self.parts += 1
        # Decided by the first pass: the parts of one layout and types union by name.
        self.apart = billing.reads_apart(read) if self.parts == 1 else self.apart
        name = f"{_RECORDS}/{self.parts}"
        if self.apart:
            path = lake.run_path(self.ctx.lake_dir, self.ctx.run_id, name)
            with billing.one_file_per_partition(self.spark):
                written = lake.write_staged(records, "billing_lines", path, "status")
        else:
            written = lake.written_run_output(
                self.spark, records, self.ctx.lake_dir, self.ctx.run_id, name
            )
        self.frames.append(written)
        self.groups += S.summarize(written)

    def lake_ready(self) -> str | None:
        """The folder of the loaded records' month folders when they can become the lake's:
        one pass, written in the lake's layout, every line number final as read."""
        if self.parts == 1 and self.apart and S.numbered_as_read(self.groups):
            first = lake.run_path(self.ctx.lake_dir, self.ctx.run_id, f"{_RECORDS}/1")
            return f"{first}/status={R.LOADED}"
        return None

    def records(self) -> DataFrame | None:
        return R.union_all(self.frames)

    def release(self) -> None:
        if self.parts:
            lake.delete(self.spark, lake.run_path(self.ctx.lake_dir, self.ctx.run_id, _RECORDS))


def _checked_records(
    spark: SparkSession,
    ctx: RunContext,
    runs: list[exports.ExportRun],
    fx: DataFrame,
    rules: WorkloadRules,
) -> tuple[_Checked, list[exports.ExportRun]]:
    """Checked records (written under the run) with their summary, and the runs as checked
    against the rows read (a blob whose row count differs from its manifest's rejects its
    run). A billing month with a loaded line lacking an FX rate is not loaded (its lake
    partition, and so its published figures, stay as they were): its lines are quarantined
    with the currency and date named, the other months go on, and the run fails at the end
    (`ctx.failed_months`).
    Either change is applied by checking again only the files whose lines it concerns."""
    failed: dict[str, str] = {}
    checked = _Checked(spark, ctx)
    stale = {str(p) for r in runs for p, _ in r.blobs}
    try:
        while True:
            read = [p for r in runs for p, _ in r.blobs if str(p) in stale]
            raw = billing.read_billing_files(spark, read)
            if raw is None and not checked.frames:
                return checked, runs
            checked.replace(stale, _checked(spark, raw, runs, fx, rules, failed), read)
            verdict = exports.with_row_count_check(runs, S.rows_per_file(checked.groups))
            missing = [] if failed else S.without_fx(checked.groups)
            if verdict == runs and not missing:
                return checked, runs
            if verdict != runs:
                stale, runs = _files_of_rejected_scope_months(runs, verdict), verdict
                continue
            for month, currency, day in missing:
                ctx.failed_months.setdefault(month, []).append(
                    f"no FX rate to USD for {currency} on {day}"
                )
            failed = {m: "; ".join(v[:5]) for m, v in ctx.failed_months.items()}
            stale = {str(p) for r in runs if r.billing_month in failed for p, _ in r.blobs}
    except BaseException:
        checked.release()
        raise


def _checked(
    spark: SparkSession,
    raw: DataFrame | None,
    runs: list[exports.ExportRun],
    fx: DataFrame,
    rules: WorkloadRules,
    failed: dict[str, str],
) -> DataFrame | None:
    if raw is None:
        return None
    return billing.checked_records(billing.joined_to_runs(spark, raw, runs), fx, rules, failed)


def _files_of_rejected_scope_months(
    before: list[exports.ExportRun], after: list[exports.ExportRun]
) -> set[str]:
    """Every file of a (scope, month) in which a run is newly rejected: which run of it is
    current, and so each of its lines' verdict, may have changed (export_run_facts)."""
    hit = {
        (a.scope_id, a.billing_month)
        for b, a in zip(before, after, strict=True)
        if b.rejected_reason != a.rejected_reason
    }
    return {str(p) for r in after if (r.scope_id, r.billing_month) in hit for p, _ in r.blobs}


def _billing_control_totals(
    spark: SparkSession, ctx: RunContext, loaded_in: dict[tuple[str, str], dict]
) -> None:
    """Loaded input rows vs what the lake holds for the months written, per currency."""
    months = sorted({m for m, _ in loaded_in})
    out = {
        (r["billing_month"], r["billing_currency"]): r["billed_cost_lake"]
        for r in lake.read_table(spark, ctx.lake_dir, "billing_lines")
        .filter(F.col("billing_month").isin(months))
        .groupBy("billing_month", "billing_currency")
        .agg(F.sum("billed_cost").alias("billed_cost_lake"))
        .collect()
    }
    totals = []
    for key in sorted(set(loaded_in) | set(out), key=str):
        t = loaded_in.get(key, {"rows_loaded": None, "billed_cost_in": None})
        totals.append(
            {
                "billing_month": key[0],
                "billing_currency": key[1],
                "rows_loaded": t["rows_loaded"],
                "billed_cost_in": t["billed_cost_in"],
                "billed_cost_usd": t.get("billed_cost_usd"),
                "billed_cost_lake": out.get(key),
            }
        )
    wrong = [t for t in totals if t["billed_cost_in"] != t["billed_cost_lake"]]
    if wrong:
        raise RuntimeError(f"billing control totals differ between input and lake: {wrong[:3]}")
    ctx.billing_control_totals = totals


def ingest_contract_commitments(
    spark: SparkSession, ctx: RunContext, runs: list[exports.ExportRun], fx: DataFrame
) -> list[dict]:
    """FOCUS Contract Commitment deliveries -> lake `contract_commitments`. Every delivery is
    read again each run (a few rows): the newest one of a commitment must win, and a row that
    waited for its FX rate loads once the rate is there."""
    from inference_ledger.ingest import contract_commitments as CC

    rows = CC.read_rows(spark, runs)
    if rows is None:
        if runs:
            return account(spark, ctx, CC.LAKE_TABLE, empty_records(spark), CC.files_of(runs))
        return []
    records = CC.commitment_records(rows, fx).persist()
    accounting = account(spark, ctx, CC.LAKE_TABLE, records, CC.files_of(runs))
    lake.write_table(loaded(records), ctx.lake_dir, CC.LAKE_TABLE)
    records.unpersist()
    return accounting
