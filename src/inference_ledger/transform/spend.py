"""Inference spend marts: daily spend and unit cost per 1M tokens."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger.transform.contract import ratio, select_mart

MONEY = T.DecimalType(38, 10)
UNKNOWN = "(none)"


def inference_spend_daily(billing_lines: DataFrame) -> DataFrame:
    """Grain: usage_date, provider, service, region, SKU/meter, workload (all workloads, so the
    share left `other` stays visible)."""
    dims = {
        "usage_date": F.col("usage_date"),
        "provider": F.col("provider_name"),
        "service_name": F.col("service_name"),
        "region": F.coalesce(F.nullif(F.col("region_name"), F.lit("")), F.lit(UNKNOWN)),
        "sku": F.coalesce(
            F.nullif(F.col("sku_description"), F.lit("")), F.col("sku_id"), F.lit(UNKNOWN)
        ),
        "workload": F.col("workload"),
    }
    grouped = billing_lines.groupBy(*[v.alias(k) for k, v in dims.items()]).agg(
        F.sum("billed_cost_usd").alias("billed_cost_usd"),
        F.sum("effective_cost_usd").alias("effective_cost_usd"),
        F.sum("consumed_quantity").alias("_qty"),
        F.countDistinct("consumed_unit").alias("_units"),
        F.min("consumed_unit").alias("_unit"),
    )
    # Quantities in different units do not add up: report them only when the unit is unique.
    return (
        grouped.withColumn("consumed_quantity", F.when(F.col("_units") == 1, F.col("_qty")))
        .withColumn("consumed_unit", F.when(F.col("_units") == 1, F.col("_unit")))
        .transform(lambda df: select_mart(df, "inference_spend_daily"))
    )


def unit_cost_monthly(usage_facts: DataFrame, billing_lines: DataFrame) -> DataFrame:
    """Allocation rule: a month's inference spend (billed cost, USD) is split across (channel,
    model) by their share of the month's total tokens (input + output; cached input is part
    of input). Rounding to 10 places leaves a residual that goes to the largest consumer, so
    allocations add up exactly to the month's spend."""
    usage = (
        usage_facts.groupBy(
            F.trunc("usage_date", "month").alias("usage_month"),
            "channel",
            F.coalesce(F.col("model"), F.lit(UNKNOWN)).alias("model"),
        )
        .agg(
            F.sum("input_tokens").alias("input_tokens"),
            F.sum("input_cached_tokens").alias("input_cached_tokens"),
            F.sum("output_tokens").alias("output_tokens"),
            F.sum("num_model_requests").alias("num_model_requests"),
        )
        .withColumn("total_tokens", F.col("input_tokens") + F.col("output_tokens"))
    )
    spend = (
        billing_lines.filter(F.col("workload") == "inference")
        .groupBy(F.trunc("usage_date", "month").alias("usage_month"))
        .agg(F.sum("billed_cost_usd").alias("_month_spend"))
    )
    month = Window.partitionBy("usage_month")
    biggest = Window.partitionBy("usage_month").orderBy(
        F.col("total_tokens").desc(), "channel", "model"
    )
    share = F.col("total_tokens").cast(T.DecimalType(20, 0)) / F.col("_month_tokens").cast(
        T.DecimalType(20, 0)
    )
    out = (
        usage.join(spend, "usage_month", "left")
        .withColumn("_month_spend", F.coalesce("_month_spend", F.lit(0).cast(MONEY)))
        .withColumn("_month_tokens", F.sum("total_tokens").over(month))
        .withColumn(
            "_alloc",
            F.when(
                F.col("_month_tokens") > 0,
                F.round(
                    F.col("_month_spend").cast(T.DecimalType(24, 10))
                    * share.cast(T.DecimalType(13, 12)),
                    10,
                ),
            ).otherwise(F.lit(0)),
        )
        .withColumn("_residual", F.col("_month_spend") - F.sum("_alloc").over(month))
        .withColumn(
            "allocated_spend_usd",
            F.col("_alloc")
            + F.when(F.row_number().over(biggest) == 1, F.col("_residual")).otherwise(F.lit(0)),
        )
        .withColumn(
            "cost_per_1m_tokens_usd",
            ratio(F.col("allocated_spend_usd") * F.lit(1_000_000), F.col("total_tokens")),
        )
    )
    return select_mart(out, "unit_cost_monthly")
