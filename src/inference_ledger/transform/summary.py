"""The quarterly summary that reproduces the public-figures table."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger.periods import FISCAL_YEAR_START_MONTH
from inference_ledger.transform.contract import minus, ratio, select_mart
from inference_ledger.transform.reconcile import quarter_label

MONEY = T.DecimalType(38, 10)


def _zero():
    return F.lit(0).cast(MONEY)


def fiscal_label(period_start) -> F.Column:
    """Partner fiscal quarter: the rule of periods.fiscal_quarter_label as a Spark column
    (fiscal year July-June, named by the calendar year it ends in: FY24 = Jul 2023-Jun 2024)."""
    start = FISCAL_YEAR_START_MONTH
    months_in = F.pmod(F.month(period_start) - start, F.lit(12))
    later = F.month(period_start) >= start if start > 1 else F.lit(False)
    fy = F.year(period_start) + F.when(later, 1).otherwise(0)
    return F.format_string("FY%02d-Q%d", F.pmod(fy, F.lit(100)), (months_in / 3).cast("int") + 1)


def quarterly_summary(
    periods: DataFrame, spend_daily: DataFrame, reconciliation: DataFrame
) -> DataFrame:
    """Grain: one row per calendar quarter. `reconciliation` includes the adjustment rows."""
    spend = (
        spend_daily.filter(F.col("workload") == "inference")
        .groupBy(quarter_label(F.col("usage_date")).alias("period_label"))
        .agg(F.sum("billed_cost_usd").alias("inference_spend_usd"))
    )
    payable = F.col("direction") == "payable"
    receivable = F.col("direction") == "receivable"
    adjustment = F.col("is_adjustment")
    # Prior-period adjustments posted into a quarter count in its figures (that is where they
    # are booked); the adjustment columns say how much of paid / received they are.
    rec = reconciliation.groupBy("period_label").agg(
        F.sum(F.when(payable, F.col("settled_usd"))).alias("revshare_paid_usd"),
        F.sum(F.when(payable, F.col("implied_basis_usd"))).alias("implied_revenue_usd"),
        F.sum(F.when(receivable, F.col("settled_usd"))).alias("revshare_received_usd"),
        F.sum(F.when(payable & adjustment, F.col("settled_usd"))).alias(
            "revshare_paid_adjustment_usd"
        ),
        F.sum(F.when(receivable & adjustment, F.col("settled_usd"))).alias(
            "revshare_received_adjustment_usd"
        ),
    )
    df = (
        periods.join(spend, "period_label", how="left")
        .join(rec, "period_label", how="left")
        .withColumn("fiscal_period_label", fiscal_label(F.col("period_start")))
        .withColumn("inference_spend_usd", F.coalesce("inference_spend_usd", _zero()))
        .withColumn("revshare_paid_usd", F.coalesce("revshare_paid_usd", _zero()))
        .withColumn("revshare_received_usd", F.coalesce("revshare_received_usd", _zero()))
        .withColumn(
            "revshare_paid_adjustment_usd", F.coalesce("revshare_paid_adjustment_usd", _zero())
        )
        .withColumn(
            "revshare_received_adjustment_usd",
            F.coalesce("revshare_received_adjustment_usd", _zero()),
        )
        .withColumn("net_revshare_usd", minus("revshare_received_usd", "revshare_paid_usd"))
        .withColumn(
            "spend_to_implied_revenue_ratio",
            ratio(F.col("inference_spend_usd"), F.col("implied_revenue_usd")),
        )
    )
    return select_mart(df, "quarterly_summary")
