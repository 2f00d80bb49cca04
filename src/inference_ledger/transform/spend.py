"""Inference spend marts: daily spend and unit cost per 1M tokens."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger.transform.contract import ratio, select_mart

MONEY = T.DecimalType(38, 10)
AMOUNT = T.DecimalType(28, 10)
UNKNOWN = "(none)"
DEFAULT_ALLOCATION = Path(__file__).resolve().parent.parent / "config" / "unit_cost_allocation.yaml"


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


@dataclass(frozen=True)
class AllocationRule:
    """Token weights of the unit-cost allocation (config/unit_cost_allocation.yaml)."""

    version: int
    input: Decimal
    cached_input: Decimal
    output: Decimal

    @classmethod
    def load(cls, path: Path | None = None) -> AllocationRule:
        path = path or DEFAULT_ALLOCATION
        doc = yaml.safe_load(path.read_text())
        weights = doc.get("weights") or {}
        try:
            values = {k: Decimal(str(weights[k])) for k in ("input", "cached_input", "output")}
        except (KeyError, InvalidOperation) as exc:
            raise ValueError(
                f"{path}: weights input, cached_input and output must be numbers"
            ) from exc
        if any(v < 0 for v in values.values()) or not any(values.values()):
            raise ValueError(f"{path}: weights must be >= 0 and not all 0")
        return cls(int(doc.get("version", 0)), **values)


def unit_cost_monthly(
    usage_facts: DataFrame, billing_lines: DataFrame, rule: AllocationRule | None = None
) -> DataFrame:
    """Grain: month, channel, model. A month's inference spend (billed cost, USD) is allocated
    by weighted token share (see config/unit_cost_allocation.yaml; default: plain token share).
    Rounding to 10 places leaves a residual that goes to the largest consumer, so allocations
    add up exactly to the month's spend."""
    rule = rule or AllocationRule.load()
    weight = T.DecimalType(24, 4)
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
        .withColumn(
            "_weight",
            (
                (F.col("input_tokens") - F.col("input_cached_tokens")).cast(weight)
                * F.lit(rule.input)
                + F.col("input_cached_tokens").cast(weight) * F.lit(rule.cached_input)
                + F.col("output_tokens").cast(weight) * F.lit(rule.output)
            ).cast(weight),
        )
    )
    spend = (
        billing_lines.filter(F.col("workload") == "inference")
        .groupBy(F.trunc("usage_date", "month").alias("usage_month"))
        .agg(F.sum("billed_cost_usd").alias("_month_spend"))
    )
    month = Window.partitionBy("usage_month")
    biggest = Window.partitionBy("usage_month").orderBy(F.col("_weight").desc(), "channel", "model")
    share = F.col("_weight") / F.col("_month_weight")
    out = (
        usage.join(spend, "usage_month", "left")
        .withColumn("_month_spend", F.coalesce("_month_spend", F.lit(0).cast(MONEY)))
        .withColumn("_month_weight", F.sum("_weight").over(month).cast(weight))
        .withColumn(
            "_alloc",
            F.when(
                F.col("_month_weight") > 0,
                F.round(
                    F.col("_month_spend").cast(T.DecimalType(24, 10))
                    * share.cast(T.DecimalType(13, 12)),
                    10,
                ),
            ).otherwise(F.lit(0)),
        )
        # Narrowed to 28 digits so Spark's decimal arithmetic keeps all 10 places.
        .withColumn(
            "_residual",
            F.col("_month_spend").cast(AMOUNT) - F.sum("_alloc").over(month).cast(AMOUNT),
        )
        .withColumn(
            "allocated_spend_usd",
            F.col("_alloc").cast(AMOUNT)
            + F.when(F.row_number().over(biggest) == 1, F.col("_residual"))
            .otherwise(F.lit(0))
            .cast(AMOUNT),
        )
        .withColumn(
            "cost_per_1m_tokens_usd",
            ratio(F.col("allocated_spend_usd") * F.lit(1_000_000), F.col("total_tokens")),
        )
    )
    return select_mart(out, "unit_cost_monthly")
