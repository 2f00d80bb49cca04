"""Conversion to the reporting currency (USD) with the daily FX feed; never a silent 1.0."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger.ingest.records import InputError

REPORTING_CURRENCY = "USD"
# Operands are narrowed so the product stays exact in Spark's decimal arithmetic
# (22+14+1 = 37 digits <= 38, scale 20) before rounding to the lake's 10 places.
_AMOUNT = T.DecimalType(22, 10)
_RATE = T.DecimalType(14, 10)
_OUT = T.DecimalType(38, 10)


def with_fx_rate(df: DataFrame, fx: DataFrame, currency_col: str, date_col: str) -> DataFrame:
    """Add `fx_rate` (USD per unit) for each row's currency and date; USD is 1 by definition."""
    rates = fx.select(
        F.col("currency").alias("_fx_currency"),
        F.col("rate_date").alias("_fx_date"),
        F.col("usd_per_unit").alias("_fx_rate"),
    )
    joined = df.join(
        rates,
        (F.col(currency_col) == F.col("_fx_currency")) & (F.col(date_col) == F.col("_fx_date")),
        how="left",
    )
    rate = F.when(F.col(currency_col) == REPORTING_CURRENCY, F.lit(1).cast(_RATE)).otherwise(
        F.col("_fx_rate")
    )
    return joined.withColumn("fx_rate", rate.cast(T.DecimalType(18, 10))).drop(
        "_fx_currency", "_fx_date", "_fx_rate"
    )


def to_usd(amount_col: str, rate_col: str = "fx_rate"):
    return (F.col(amount_col).cast(_AMOUNT) * F.col(rate_col).cast(_RATE)).cast(_OUT)


def require_fx(df: DataFrame, what: str, currency_col: str, date_col: str) -> None:
    """Fail naming the currency and date of missing rates (at most 10 listed)."""
    missing = (
        df.filter(F.col("fx_rate").isNull())
        .select(currency_col, date_col)
        .distinct()
        .orderBy(currency_col, date_col)
        .limit(10)
        .collect()
    )
    if missing:
        pairs = ", ".join(f"{r[0]} on {r[1]}" for r in missing)
        raise InputError(f"{what}: no FX rate to {REPORTING_CURRENCY} for {pairs}")
