"""Usage priced at the price sheet: the one place token types meet price rows (unit cost
weighs by it, the `reported` receivable basis is estimated with it)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def token_rows(usage_facts: DataFrame) -> DataFrame:
    """One row per usage row and price-sheet token type (input, cached_input, output):
    input_tokens includes the cached ones, which the price sheet prices separately."""
    cached = F.coalesce(F.col("input_cached_tokens"), F.lit(0))
    parts = {
        "input": F.col("input_tokens") - cached,
        "cached_input": cached,
        "output": F.col("output_tokens"),
    }
    types = [F.struct(F.lit(k).alias("token_type"), v.alias("tokens")) for k, v in parts.items()]
    return usage_facts.select(
        "usage_date", "channel", "model", F.explode(F.array(*types)).alias("t")
    ).select("usage_date", "channel", "model", "t.token_type", "t.tokens")


def with_price_sheet(tokens: DataFrame, prices: DataFrame) -> DataFrame:
    """`tokens` (usage_date, channel, model, token_type, ...) with the USD price in effect on
    the usage date (`unit_tokens`, `unit_price`; NULL where none is). Non-USD price rows are
    not converted: their tokens stay unpriced."""
    sheet = prices.filter(F.col("currency") == "USD").select(
        F.col("channel").alias("_p_channel"),
        F.col("model").alias("_p_model"),
        F.col("token_type").alias("_p_type"),
        "unit_tokens",
        "unit_price",
        F.col("effective_from").alias("_p_from"),
        F.col("effective_to").alias("_p_to"),
    )
    priced = tokens.join(
        F.broadcast(sheet),
        (F.col("channel") == F.col("_p_channel"))
        & (F.col("model") == F.col("_p_model"))
        & (F.col("token_type") == F.col("_p_type"))
        & (F.col("usage_date") >= F.col("_p_from"))
        & (F.col("_p_to").isNull() | (F.col("usage_date") < F.col("_p_to"))),
        how="left",
    )
    return priced.drop("_p_channel", "_p_model", "_p_type", "_p_from", "_p_to")
