"""The marts an aggregate computes besides the reconciliation: unit margin, the commitment
burn-down, the outlook (forecast and cap projection), and the lake-side control totals the
staged marts must tie out to."""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from inference_ledger import lake
from inference_ledger.run.context import RunContext


def unit_margin(
    spark: SparkSession,
    ctx: RunContext,
    unit: DataFrame,
    weights: DataFrame,
    revenue: DataFrame,
    settlements: DataFrame,
    terms: DataFrame,
) -> tuple[DataFrame, DataFrame]:
    """marts.unit_margin_monthly of the run's months (revenue lines and statements of the
    run's range), and the first-party revenue per month it must add up to. `weights` are
    spend.usage_weights of the run's usage, as unit cost allocated by them; the statements'
    monthly amounts are written under the run and read back, as their split to models reads them
    twice and each read was the statements' and terms' whole plan again."""
    from inference_ledger.transform import margin

    rule = margin.MarginRule.load()
    monthly = lake.written_run_output(
        spark,
        margin.monthly_amounts(weights, revenue, settlements, terms, rule),
        ctx.lake_dir,
        ctx.run_id,
        "work/margin_monthly_amounts",
    )
    df = margin.unit_margin_from_monthly(unit, weights, monthly, rule)
    return df, margin.first_party_revenue(revenue, rule)


def burndown(spark: SparkSession, ctx: RunContext, start: date, end: date) -> DataFrame:
    """marts.commitment_burndown of the run's months, for the finance feed's commitments and
    the bill's own (FOCUS Contract Commitment dataset): consumption accumulates from each
    term's start, so the bill is read from the earliest one (not only the run's range)."""
    from inference_ledger.transform import commitment

    commitments = commitment.binding_commitments(
        lake.read_table(spark, ctx.lake_dir, "commitments"),
        lake.read_table(spark, ctx.lake_dir, "contract_commitments"),
    )
    first = commitments.agg(F.min("start_date")).first()[0] or start
    billing = lake.read_table(spark, ctx.lake_dir, "billing_lines").filter(
        (F.col("usage_date") >= F.lit(min(first, start))) & (F.col("usage_date") < F.lit(end))
    )
    return commitment.commitment_burndown(commitments, billing, start, end)


def outlook(
    spark: SparkSession,
    ctx: RunContext,
    rec_all: DataFrame,
    terms: DataFrame,
    earliest: date,
    start: date,
    end: date,
) -> list[tuple[str, DataFrame]]:
    """The projection marts made from each quarter of the run: the forecast from the history
    of every quarter up to it (lake billing and the reconciliation since the first term), and
    the cap projection of every capped agreement."""
    from inference_ledger.transform import outlook, reconcile

    billing = lake.read_table(spark, ctx.lake_dir, "billing_lines").filter(
        F.col("usage_date") < F.lit(end)
    )
    first = billing.agg(F.min("usage_date")).first()[0] or earliest
    history_rec = rec_all.filter(F.col("period_start") < F.lit(end))
    periods = reconcile.periods_frame(spark, min(first, earliest), end)
    history = outlook.metric_history(periods, billing, history_rec)
    return [
        ("quarterly_forecast", outlook.quarterly_forecast(history, terms, start, end)),
        ("cap_projection", outlook.cap_projection(history_rec, terms, start, end)),
    ]


def control_totals(
    ctx: RunContext, billing: DataFrame, first_party_revenue: DataFrame | None = None
) -> None:
    """Lake-side totals the staged marts must tie out to, per period and currency: billed
    cost per month (inference_spend_daily) and the first-party revenue per month the unit
    margin allocates (unit_margin_monthly; margin.first_party_revenue)."""
    spend = billing.groupBy(F.date_format("usage_date", "yyyy-MM").alias("period_label")).agg(
        F.sum("billed_cost_usd").alias("amount"), F.count(F.lit(1)).alias("row_count")
    )
    parts = [("inference_spend_daily", spend)]
    if first_party_revenue is not None:
        revenue = first_party_revenue.select(
            F.date_format("usage_month", "yyyy-MM").alias("period_label"),
            F.col("_amount").alias("amount"),
            F.lit(1).alias("row_count"),
        )
        parts.append(("unit_margin_monthly", revenue))
    totals = [
        df.select(
            F.lit(table).alias("table_name"),
            "period_label",
            F.lit("USD").alias("currency"),
            F.col("amount").cast("decimal(38,10)").alias("amount"),
            F.col("row_count").cast("long").alias("row_count"),
        )
        for table, df in parts
    ]
    out = totals[0] if len(totals) == 1 else totals[0].unionByName(totals[1])
    lake.write_run_output(out, ctx.lake_dir, ctx.run_id, "control_totals")
