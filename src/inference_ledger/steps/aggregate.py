"""The aggregate step: lake -> the run's marts (spend, unit cost and margin, burn-down, outlook,
revenue-share reconciliation, quarterly summary), written under the run for publishing.

Planned: the run's range, widened to whole quarters. Gated: the lake suites check the inputs of
that range before anything is computed from them. Recorded: the range the marts cover (a late
change to a closed quarter can extend it by one quarter) and the closed periods they assumed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from inference_ledger import lake
from inference_ledger.db import connection, database_url
from inference_ledger.ingest import finance
from inference_ledger.ingest import records as R
from inference_ledger.periods import quarters_between
from inference_ledger.run.context import RunContext
from inference_ledger.run.runner import Run, Step
from inference_ledger.steps import aggregate_marts as M
from inference_ledger.steps.reconcile import Reconciliation, reconcile_history

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Range:
    start: date  # inclusive, a quarter's first day
    end: date  # exclusive, a quarter's end


@dataclass(frozen=True)
class Aggregated:
    counts: dict[str, int]
    range: Range
    closed: list[str]  # the periods closed when the run aggregated


def resolve_range(spark: SparkSession, ctx: RunContext) -> Range:
    """The run's period, widened to whole calendar quarters (the marts' coarsest grain)."""
    start, end = ctx.start, ctx.end
    if start is None or end is None:
        bounds = []
        for table, col in (
            ("billing_lines", "usage_date"),
            ("revenue_lines", "revenue_date"),
            ("usage_facts", "usage_date"),
        ):
            row = lake.read_table(spark, ctx.lake_dir, table).agg(F.min(col), F.max(col)).first()
            if row[0] is not None:
                bounds.append((row[0], row[1]))
        if not bounds:
            raise R.InputError(f"no billing, revenue or usage data in the lake {ctx.lake_dir}")
        start = start or min(b[0] for b in bounds)
        end = end or date.fromordinal(max(b[1] for b in bounds).toordinal() + 1)
    quarters = quarters_between(start, end)
    return Range(quarters[0].start, quarters[-1].end)


def aggregate(
    spark: SparkSession, ctx: RunContext, planned: Range, url: str | None = None
) -> Aggregated:
    """Lake -> the marts for the run's quarters, written under the run for publishing.

    Reads the closed periods from the database (`url`, default the configured one): a late
    change to a closed quarter becomes a prior-period adjustment row in the first open quarter
    after it. If the run's last quarter is closed and such a change exists, the run extends to
    the next open quarter so the adjustment has somewhere to go."""
    from inference_ledger.transform import spend

    terms = lake.read_table(spark, ctx.lake_dir, "contract_terms")
    prices = lake.read_table(spark, ctx.lake_dir, "prices")
    # The usage facts summed per day, channel and model, once: the price-sheet check and the
    # receivable's usage estimate (every period) and the unit-cost weights (the run's range)
    # price day sums, and each read the facts again (10M results: four scans).
    usage_daily = lake.written_run_output(
        spark, spend.daily_usage(lake.read_table(spark, ctx.lake_dir, "usage_facts")),
        ctx.lake_dir, ctx.run_id, "work/usage_daily",
    )  # fmt: skip
    _check_price_sheet(prices, usage_daily, terms)
    with connection(url or database_url(ctx.settings)) as conn:
        rec = reconcile_history(
            spark, ctx, conn, planned.start, planned.end, terms, prices, usage_daily
        )
    try:
        counts = _write_marts(spark, ctx, rec, terms, prices, usage_daily)
    finally:
        rec.release()
    return Aggregated(counts, Range(rec.start, rec.end), rec.closed)


def _check_price_sheet(prices: DataFrame, usage_daily: DataFrame, terms: DataFrame) -> None:
    from inference_ledger.transform import reconcile

    # The estimate of the reported basis reads the partner channel's usage of every period.
    resale_usage = usage_daily.filter(F.col("channel") == reconcile.USAGE_CHANNEL)
    price_errors = finance.price_sheet_errors(prices, resale_usage, terms)
    if price_errors:
        raise R.InputError("finance/prices: " + "; ".join(price_errors[:10]))


def _write_marts(
    spark: SparkSession, ctx: RunContext, rec: Reconciliation, terms, prices, usage_daily
) -> dict[str, int]:
    """Each mart written under the run; a mart another one is made from is read back from its
    Parquet rather than computed again (at 10M usage results unit cost is a pass over them)."""
    from inference_ledger.transform import spend, summary

    start, end = rec.start, rec.end
    in_range = lambda c: (F.col(c) >= F.lit(start)) & (F.col(c) < F.lit(end))  # noqa: E731
    billing = lake.read_table(spark, ctx.lake_dir, "billing_lines").filter(in_range("usage_date"))
    counts: dict[str, int] = {}
    write = lambda name, df: _write_mart(spark, ctx, counts, name, df)  # noqa: E731
    daily = write("inference_spend_daily", spend.inference_spend_daily(billing))
    # Unit margin's plan refers to the weights at six places (each split reads its weights
    # twice): computed from the usage facts there, it scanned them twelve times.
    weights = lake.written_run_output(
        spark, spend.usage_weights(usage_daily.filter(in_range("usage_date")), prices),
        ctx.lake_dir, ctx.run_id,
        "work/usage_weights",
    )  # fmt: skip
    unit = write("unit_cost_monthly", spend.unit_cost_from_weights(weights, billing))
    _warn_unpriced(spend.unpriced_of(weights))
    revenue = lake.read_table(spark, ctx.lake_dir, "revenue_lines")
    settlements = lake.read_table(spark, ctx.lake_dir, "settlements")
    unit_margin, revenue_totals = M.unit_margin(
        spark, ctx, unit, weights, revenue.filter(in_range("revenue_date")),
        settlements.filter(in_range("period_start")), terms,
    )  # fmt: skip
    write("unit_margin_monthly", unit_margin)
    write("commitment_burndown", M.burndown(spark, ctx, start, end))
    for name, df in M.outlook(spark, ctx, rec.history, terms, rec.earliest, start, end):
        write(name, df)
    in_run = write("revshare_reconciliation", rec.in_run(spark))
    write("quarterly_summary", summary.quarterly_summary(rec.periods(spark), daily, in_run))
    M.control_totals(ctx, billing, revenue_totals)
    return counts


def _write_mart(
    spark: SparkSession, ctx: RunContext, counts: dict[str, int], name: str, df: DataFrame
) -> DataFrame:
    """Write one mart under the run, count its rows, and return it as written."""
    written = lake.written_run_output(spark, df, ctx.lake_dir, ctx.run_id, f"marts/{name}")
    counts[name] = written.count()
    return written


def _warn_unpriced(unpriced: DataFrame) -> None:
    for r in unpriced.orderBy("usage_month").collect()[:20]:
        log.warning(
            "unit cost: %s %s %s has %s tokens with no USD price in effect; weighed by the"
            " allocation fallback (config/unit_cost_allocation.yaml)",
            r["usage_month"], r["channel"], r["model"], r["unpriced_tokens"],
        )  # fmt: skip


class AggregateStep(Step[Range, Aggregated]):
    name = "aggregate"
    writes_lake = True

    def plan(self, run: Run) -> Range:
        return resolve_range(run.spark, run.ctx)

    def input_bytes(self, run: Run, plan: Range) -> int:
        from inference_ledger.spark import uncompressed_bytes

        # The large tables, whole (snappy Parquet): the range's share is not known before reading.
        tables = ("billing_lines", "usage_facts")
        stored = sum(lake.table_bytes(run.spark, run.ctx.lake_dir, t) for t in tables)
        return uncompressed_bytes(stored, compressed=True)

    def check_inputs(self, run: Run, plan: Range) -> None:
        from inference_ledger.quality import gate

        gate.lake_gate(run.spark, run.ctx, run.url, plan.start, plan.end)

    def execute(self, run: Run, plan: Range) -> Aggregated:
        return aggregate(run.spark, run.ctx, plan, run.url)

    def record(self, run: Run, plan: Range, result: Aggregated) -> None:
        run.store.record_aggregate(result.range.start, result.range.end, result.closed)
