"""The price sheet against what it must price: two prices in effect at once, and the resale
usage the receivable cross-check would find no USD price for."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# The receivable cross-check prices the partner's resale channel with the USD price sheet.
PRICED_CHANNEL = "azure_openai"
PRICE_CURRENCY = "USD"
_FAR = "9999-12-31"


def price_overlaps(prices: DataFrame) -> list[str]:
    """Two prices in effect on one day for a channel, model, token type and currency would
    price those tokens twice: an error naming them."""
    a, b = prices.alias("a"), prices.alias("b")
    far = F.lit(_FAR).cast("date")
    overlap = (
        (F.col("a.channel") == F.col("b.channel"))
        & (F.col("a.model") == F.col("b.model"))
        & (F.col("a.token_type") == F.col("b.token_type"))
        & (F.col("a.currency") == F.col("b.currency"))
        & (F.col("a.effective_from") < F.col("b.effective_from"))
        & (F.coalesce(F.col("a.effective_to"), far) > F.col("b.effective_from"))
    )
    rows = (
        a.join(b, overlap, how="inner")
        .select(
            "a.channel",
            "a.model",
            "a.token_type",
            "a.currency",
            "a.effective_from",
            "b.effective_from",
        )  # fmt: skip
        .orderBy("a.channel", "a.model", "a.token_type", "a.effective_from")
        .collect()
    )
    return [f"{r[0]} {r[1]} {r[2]} ({r[3]}): prices from {r[4]} and {r[5]} overlap" for r in rows]


def unpriced_usage(usage_facts: DataFrame, prices: DataFrame, terms: DataFrame) -> DataFrame:
    """(channel, model, token_type, usage_date, tokens) the receivable cross-check must price
    and the sheet has no USD price in effect for: resale-channel usage with tokens of that type
    on a day a `reported` term is in effect. Pure; `price_gaps` words it."""
    rep = terms.filter(F.col("basis") == "reported").select(
        F.col("effective_from").alias("_t_from"), F.col("effective_to").alias("_t_to")
    )
    far = F.lit(_FAR).cast("date")
    by_day = (
        usage_facts.filter(F.col("channel") == PRICED_CHANNEL)
        .groupBy("channel", F.coalesce("model", F.lit("(none)")).alias("model"), "usage_date")
        .agg(
            F.sum(F.col("input_tokens") - F.col("input_cached_tokens")).alias("input"),
            F.sum("input_cached_tokens").alias("cached_input"),
            F.sum("output_tokens").alias("output"),
        )
    )
    in_terms = by_day.join(
        F.broadcast(rep),
        (F.col("usage_date") >= F.col("_t_from"))
        & (F.col("usage_date") < F.coalesce("_t_to", far)),
        how="left_semi",
    )
    tokens = in_terms.select(
        "channel",
        "model",
        "usage_date",
        F.explode(
            F.array(
                *[
                    F.struct(F.lit(t).alias("token_type"), F.col(t).alias("tokens"))
                    for t in ("input", "cached_input", "output")
                ]
            )
        ).alias("t"),
    ).select("channel", "model", "usage_date", "t.token_type", "t.tokens")
    sheet = prices.filter(F.col("currency") == PRICE_CURRENCY).select(
        F.col("channel").alias("_p_channel"),
        F.col("model").alias("_p_model"),
        F.col("token_type").alias("_p_type"),
        F.col("effective_from").alias("_p_from"),
        F.col("effective_to").alias("_p_to"),
    )
    return tokens.filter(F.col("tokens") > 0).join(
        F.broadcast(sheet),
        (F.col("channel") == F.col("_p_channel"))
        & (F.col("model") == F.col("_p_model"))
        & (F.col("token_type") == F.col("_p_type"))
        & (F.col("usage_date") >= F.col("_p_from"))
        & (F.col("usage_date") < F.coalesce("_p_to", far)),
        how="left_anti",
    )


def _date_ranges(days: list) -> str:
    """Sorted dates as `d1..d2` runs of consecutive days."""
    runs: list[list] = []
    for d in days:
        if runs and (d - runs[-1][1]).days == 1:
            runs[-1][1] = d
        else:
            runs.append([d, d])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs)


def price_gaps(usage_facts: DataFrame, prices: DataFrame, terms: DataFrame) -> list[str]:
    """What the price sheet is missing, per channel, model and token type with the dates."""
    missing = (
        unpriced_usage(usage_facts, prices, terms)
        .groupBy("channel", "model", "token_type")
        .agg(F.sort_array(F.collect_set("usage_date")).alias("days"))
        .orderBy("channel", "model", "token_type")
        .collect()
    )
    return [
        f"no {PRICE_CURRENCY} price for {r['channel']} {r['model']} {r['token_type']} tokens"
        f" on {_date_ranges(r['days'])}"
        for r in missing
    ]
