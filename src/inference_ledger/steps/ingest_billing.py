"""The billing part of an ingest: the cost export runs of every dialect (the newest good run per
scope and month wins), FX-converted and checked line by line into the lake's `billing_lines`,
with the months that cannot load (a missing FX rate) left out and named, control totals between
input and lake, and the provider's FOCUS Contract Commitment deliveries."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from inference_ledger import lake
from inference_ledger.ingest import billing, exports
from inference_ledger.ingest import records as R
from inference_ledger.run import plan
from inference_ledger.run.context import RunContext
from inference_ledger.steps.accounting import account, empty_records, loaded, skipped
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
    """The chosen export runs -> lake `billing_lines`; returns their accounting."""
    # The CSV is parsed once: the row-count check, the line numbers and the records all read
    # this cache.
    raw = billing.read_billing_files(spark, [p for r in runs for p, _ in r.blobs])
    if raw is not None:
        raw = raw.persist()
        rows, runs = billing.with_run_facts(spark, raw, runs)
    for run in runs:
        if run.rejected_reason:
            log.warning(
                "billing run %s (%s) rejected: %s",
                run.run_id,
                run.billing_month,
                run.rejected_reason,
            )
    if raw is None:
        return []
    records = _fail_months_without_fx(ctx, billing.billing_records(rows, fx, rules).persist())
    raw.unpersist()
    files = [p for r in runs for p, _ in r.blobs]
    accounting = account(spark, ctx, "billing", records, files)
    lake.write_table(loaded(records), ctx.lake_dir, "billing_lines")
    _billing_control_totals(spark, ctx, records)
    records.unpersist()
    return accounting


def _billing_control_totals(spark: SparkSession, ctx: RunContext, records: DataFrame) -> None:
    """Loaded input rows vs what the lake holds for the months written, per currency."""
    done = loaded(records)
    months = [r[0] for r in done.select("billing_month").distinct().collect()]
    key = ["billing_month", "billing_currency"]
    inp = done.groupBy(*key).agg(
        F.count(F.lit(1)).alias("rows_loaded"),
        F.sum("billed_cost").alias("billed_cost_in"),
        F.sum("billed_cost_usd").alias("billed_cost_usd"),
    )
    out = (
        lake.read_table(spark, ctx.lake_dir, "billing_lines")
        .filter(F.col("billing_month").isin(months))
        .groupBy(*key)
        .agg(F.sum("billed_cost").alias("billed_cost_lake"))
    )
    totals = [r.asDict() for r in inp.join(out, key, how="full").collect()]
    wrong = [t for t in totals if t["billed_cost_in"] != t["billed_cost_lake"]]
    if wrong:
        raise RuntimeError(f"billing control totals differ between input and lake: {wrong[:3]}")
    ctx.billing_control_totals = totals


def _fail_months_without_fx(ctx: RunContext, records: DataFrame) -> DataFrame:
    """A billing month with a line lacking an FX rate is not loaded (its lake partition, and so
    its published figures, stay as they were); its rows are quarantined with the currency and
    date named, the other months go on, and the run fails at the end (`failed_months`).
    `records` comes cached; what is returned is cached (`records` itself, or a cached copy
    with those months quarantined, `records` then released)."""
    missing = (
        records.filter((F.col("status") == R.LOADED) & F.col("fx_rate").isNull())
        .groupBy("billing_month", "billing_currency", "usage_date")
        .count()
        .orderBy("billing_month", "billing_currency", "usage_date")
        .collect()
    )
    if not missing:
        return records
    cached = records
    for r in missing:
        ctx.failed_months.setdefault(r["billing_month"], []).append(
            f"no FX rate to USD for {r['billing_currency']} on {r['usage_date']}"
        )
    reasons = {m: "; ".join(v[:5]) for m, v in ctx.failed_months.items()}
    reason_of = F.create_map(*[F.lit(x) for kv in reasons.items() for x in kv])
    failed = (F.col("status") == R.LOADED) & F.col("billing_month").isin(list(reasons))
    out = (
        records.withColumn(
            "reason",
            F.when(
                failed,
                F.concat(F.lit("billing month not loaded: "), reason_of[F.col("billing_month")]),
            ).otherwise(F.col("reason")),
        )
        .withColumn("status", F.when(failed, F.lit(R.QUARANTINED)).otherwise(F.col("status")))
        .persist()
    )
    out.count()
    cached.unpersist()
    return out


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
