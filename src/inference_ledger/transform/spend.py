"""Inference spend marts: daily spend and unit cost per 1M tokens."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger.spark import local_frame
from inference_ledger.transform.contract import minus, ratio, select_mart
from inference_ledger.transform.pricing import token_rows, with_price_sheet

MONEY = T.DecimalType(38, 10)
AMOUNT = T.DecimalType(28, 10)
# Allocation weights (USD at list price, or weighted tokens), narrowed so that weight / weight
# keeps 14 places before the share is rounded to 12.
WEIGHT = T.DecimalType(24, 10)
SHARE = T.DecimalType(13, 12)
# tokens x unit price: decimal(15,0) x decimal(18,10) = decimal(34,10), every digit kept.
TOKENS = T.DecimalType(15, 0)
RATE = T.DecimalType(18, 10)
# A month's average USD value of a priced token.
PRICE_PER_TOKEN = T.DecimalType(30, 24)
# Token counts as integers for ratios of tokens: decimal(20,0) / decimal(20,0) keeps 18 places,
# and a month may hold more than the 10^14 tokens a WEIGHT can (the demo's 2025 months do).
TOKEN_COUNT = T.DecimalType(20, 0)
# Token-count weights are per million tokens: shares are the same, and they fit a WEIGHT.
PER_MILLION = Decimal(1_000_000)
UNKNOWN = "(none)"
DEFAULT_ALLOCATION = Path(__file__).resolve().parent.parent / "config" / "unit_cost_allocation.yaml"
METHODS = ("price_sheet", "token_weights")
FALLBACKS = ("month_average", "zero")
_PRICES_DDL = (
    "channel string, model string, token_type string, unit_tokens bigint, "
    "unit_price decimal(18,10), currency string, effective_from date, effective_to date"
)


def _dim(c: str) -> Column:
    return F.coalesce(F.nullif(F.trim(F.col(c)), F.lit("")), F.lit(UNKNOWN))


def inference_spend_daily(billing_lines: DataFrame) -> DataFrame:
    """Grain: usage_date, provider, service, region, SKU/meter, model, token direction and
    workload (all workloads, so the share left `other` stays visible). `month_status` is
    `final` only when every line of every billing month behind the row (all scopes and
    providers of that month in `billing_lines`) is `final`; otherwise — a missing status
    included — `provisional`."""
    final = F.when(F.col("dataset_status") == "final", 1).otherwise(0)
    # A month's finality from a small aggregate joined back, not a window over the billing
    # month (which shuffled and sorted every line with all its columns: 1M lines, warm,
    # 3.6-4.4 s -> 1.8-2.4 s for the mart).
    months = billing_lines.groupBy(F.col("billing_month").alias("_month")).agg(
        F.min(final).alias("_month_final")
    )
    dims = {
        "usage_date": F.col("usage_date"),
        "provider": F.col("provider_name"),
        "service_name": F.col("service_name"),
        "region": F.coalesce(F.nullif(F.col("region_name"), F.lit("")), F.lit(UNKNOWN)),
        "sku": F.coalesce(
            F.nullif(F.col("sku_description"), F.lit("")), F.col("sku_id"), F.lit(UNKNOWN)
        ),
        "model_id": _dim("model_id"),
        "token_direction": _dim("token_direction"),
        "workload": F.col("workload"),
    }
    grouped = (
        billing_lines.join(
            F.broadcast(months), F.col("billing_month").eqNullSafe(F.col("_month")), how="left"
        )
        .groupBy(*[v.alias(k) for k, v in dims.items()])
        .agg(
            F.sum("billed_cost_usd").alias("billed_cost_usd"),
            F.sum("effective_cost_usd").alias("effective_cost_usd"),
            F.sum("consumed_quantity").alias("_qty"),
            # One unit when the least and the greatest are the same (countDistinct = 1 without
            # the distinct aggregate's row expansion).
            F.min("consumed_unit").alias("_unit"),
            F.max("consumed_unit").alias("_unit_max"),
            # A day can carry lines of two billing months (late charges): final only if both are.
            F.min("_month_final").alias("_final"),
        )
    )
    one_unit = F.col("_unit") == F.col("_unit_max")
    # Quantities in different units do not add up: report them only when the unit is unique.
    return (
        grouped.withColumn("consumed_quantity", F.when(one_unit, F.col("_qty")))
        .withColumn("consumed_unit", F.when(one_unit, F.col("_unit")))
        .withColumn("month_status", F.when(F.col("_final") == 1, "final").otherwise("provisional"))
        .transform(lambda df: select_mart(df, "inference_spend_daily"))
    )


@dataclass(frozen=True)
class AllocationRule:
    """How unit_cost_monthly weighs usage (config/unit_cost_allocation.yaml): `method`
    price_sheet (usage priced at the USD price sheet; unpriced usage by `fallback`) or
    token_weights (tokens x `input` / `cached_input` / `output`)."""

    version: int
    method: str = "price_sheet"
    fallback: str = "month_average"
    input: Decimal = Decimal(1)
    cached_input: Decimal = Decimal(1)
    output: Decimal = Decimal(1)

    @classmethod
    def load(cls, path: Path | None = None) -> AllocationRule:
        path = path or DEFAULT_ALLOCATION
        doc = yaml.safe_load(path.read_text()) or {}
        method = doc.get("method", "price_sheet")
        fallback = doc.get("fallback", "month_average")
        for key, value, allowed in (("method", method, METHODS), ("fallback", fallback, FALLBACKS)):
            if value not in allowed:
                raise ValueError(
                    f"{path}: {key} must be one of {', '.join(allowed)}, not {value!r}"
                )
        values = {}
        if "weights" in doc or method == "token_weights":
            weights = doc.get("weights") or {}
            try:
                values = {k: Decimal(str(weights[k])) for k in ("input", "cached_input", "output")}
            except (KeyError, InvalidOperation) as exc:
                raise ValueError(
                    f"{path}: weights input, cached_input and output must be numbers"
                ) from exc
            if any(v < 0 for v in values.values()) or not any(values.values()):
                raise ValueError(f"{path}: weights must be >= 0 and not all 0")
        return cls(int(doc.get("version", 0)), method, fallback, **values)


def normalised_model(c: Column) -> Column:
    """How bill model ids meet usage model names: trimmed, lower case, without a catalog path
    (`openai/GPT-4o` -> `gpt-4o`); after that only exact equality matches."""
    return F.nullif(F.lower(F.trim(F.regexp_replace(c, r"^.*/", ""))), F.lit(""))


def daily_usage(usage_facts: DataFrame) -> DataFrame:
    """The usage facts summed per usage date, channel and model: the columns `_month_usage` and
    `priced_usage` read. Both are sums of these columns (a token type's tokens are linear in
    them, and a price is fixed per day), so they come out the same from the day sums, exactly;
    pricing then explodes and joins a few thousand day sums, not every usage row three ways.
    The same holds for the receivable's usage estimate and the price-sheet check (sums of
    tokens priced per day), so the aggregate step writes these sums once for all three; the
    sums of day sums are the day sums."""
    return usage_facts.groupBy("usage_date", "channel", "model").agg(
        *[
            F.sum(c).alias(c)
            for c in ("input_tokens", "input_cached_tokens", "output_tokens", "num_model_requests")
        ]
    )


def _month_usage(usage_facts: DataFrame) -> DataFrame:
    return (
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
            F.first(normalised_model(F.col("model")), ignorenulls=True).alias("_norm"),
        )
        .withColumn("total_tokens", F.col("input_tokens") + F.col("output_tokens"))
    )


def _token_rows(usage_facts: DataFrame) -> DataFrame:
    return token_rows(usage_facts).select(
        F.trunc("usage_date", "month").alias("usage_month"),
        "usage_date",
        "channel",
        F.coalesce(F.col("model"), F.lit(UNKNOWN)).alias("model"),
        "token_type",
        "tokens",
    )


def priced_usage(usage_facts: DataFrame, prices: DataFrame | None) -> DataFrame:
    """Per month, channel and model: `_value`, the usage priced at the USD price sheet in
    effect on each usage date (each token type's tokens x unit_price / unit_tokens, as
    reconcile.usage_estimate prices), and the tokens that had a price (`_priced_tokens`) or
    none (`_unpriced_tokens`). Non-USD price rows are not converted: their tokens are
    unpriced. No price sheet at all (None) = every token unpriced."""
    tokens = _token_rows(usage_facts)
    if prices is None:
        prices = local_frame(tokens.sparkSession, [], _PRICES_DDL)
    priced = with_price_sheet(tokens, prices)
    has_price = F.col("unit_price").isNotNull()
    value = F.col("tokens").cast(TOKENS) * F.col("unit_price").cast(RATE)
    by_unit = priced.groupBy("usage_month", "channel", "model", "unit_tokens").agg(
        F.sum(F.when(has_price, value)).alias("_value"),
        F.sum(F.when(has_price, F.col("tokens"))).alias("_priced"),
        F.sum(F.when(~has_price, F.col("tokens"))).alias("_unpriced"),
    )
    # Divide once per unit size, after summing exact token x price products.
    return by_unit.groupBy("usage_month", "channel", "model").agg(
        F.coalesce(F.sum(ratio(F.col("_value"), F.col("unit_tokens"))), F.lit(0))
        .cast(WEIGHT)
        .alias("_value"),
        F.coalesce(F.sum("_priced"), F.lit(0)).cast("long").alias("_priced_tokens"),
        F.coalesce(F.sum("_unpriced"), F.lit(0)).cast("long").alias("_unpriced_tokens"),
    )


def unpriced_usage(usage_facts: DataFrame, prices: DataFrame | None) -> DataFrame:
    """The (month, channel, model)s with tokens that had no USD price in effect, and how
    many: what the unit-cost `fallback` weighed (for a run's warnings)."""
    return unpriced_of(priced_usage(usage_facts, prices))


def unpriced_of(priced: DataFrame) -> DataFrame:
    """`unpriced_usage` of `priced_usage` or of `usage_weights`, which carry its columns (the
    aggregate step reads them from the written weights instead of pricing the usage again)."""
    return priced.filter(F.col("_unpriced_tokens") > 0).select(
        "usage_month", "channel", "model", F.col("_unpriced_tokens").alias("unpriced_tokens")
    )


def _weights(usage: DataFrame, rule: AllocationRule) -> DataFrame:
    """`_weight` of each (month, channel, model) under the rule."""
    if rule.method == "token_weights":
        weight = (
            _millions(F.col("input_tokens") - F.col("input_cached_tokens")) * F.lit(rule.input)
            + _millions(F.col("input_cached_tokens")) * F.lit(rule.cached_input)
            + _millions(F.col("output_tokens")) * F.lit(rule.output)
        )
        return usage.withColumn("_weight", weight.cast(WEIGHT))
    month = Window.partitionBy("usage_month")
    if rule.fallback == "month_average":
        # Each unpriced token weighs as much as the month's average priced token.
        # The average is kept to 24 places: a ratio of tokens rounded first and then scaled by
        # a month's value of 10^8 USD would be off in the 5th decimal.
        average = (F.col("_m_value") / F.col("_m_priced").cast(TOKEN_COUNT)).cast(PRICE_PER_TOKEN)
        extra = F.round(F.col("_unpriced_tokens").cast(TOKEN_COUNT) * average, 10)
    else:
        extra = F.lit(0)
    return (
        usage.withColumn("_m_priced", F.sum("_priced_tokens").over(month))
        .withColumn("_m_value", F.sum("_value").over(month).cast(WEIGHT))
        # A month with nothing priced at all is allocated by plain token share.
        .withColumn(
            "_weight",
            F.when(F.col("_m_priced") > 0, F.col("_value") + extra)
            .otherwise(_millions(F.col("_unpriced_tokens")))
            .cast(WEIGHT),
        )
    )


def _millions(tokens: Column) -> Column:
    """Tokens in millions, exact (6 places)."""
    return tokens.cast(TOKEN_COUNT) / F.lit(PER_MILLION).cast(T.DecimalType(7, 0))


def _month_spend(billing_lines: DataFrame, usage: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Per month: the inference spend (billed cost, USD) and `_pool`, the part not billed per
    model; and per month and normalised model, `_direct`, the spend billed with a model id
    that matches a usage model of the month. Bill model ids with no usage match stay in the
    pool."""
    lines = billing_lines.filter(F.col("workload") == "inference").select(
        F.trunc("usage_date", "month").alias("usage_month"),
        normalised_model(F.col("model_id")).alias("_norm"),
        "billed_cost_usd",
    )
    used = usage.filter(F.col("_norm").isNotNull()).select("usage_month", "_norm").distinct()
    direct = (
        lines.filter(F.col("_norm").isNotNull())
        .groupBy("usage_month", "_norm")
        .agg(F.sum("billed_cost_usd").alias("_direct"))
        .join(used, ["usage_month", "_norm"], how="left_semi")
    )
    direct_total = direct.groupBy("usage_month").agg(F.sum("_direct").alias("_direct_total"))
    spend = (
        lines.groupBy("usage_month")
        .agg(F.sum("billed_cost_usd").alias("_month_spend"))
        .join(direct_total, "usage_month", how="left")
        .withColumn("_pool", minus("_month_spend", F.coalesce("_direct_total", F.lit(0))))
    )
    return spend, direct


def _part(amount: Column, share: Column) -> Column:
    return F.round(amount.cast(WEIGHT) * share.cast(SHARE), 10)


def _allocate(df: DataFrame) -> DataFrame:
    """`allocated_spend_usd`: a model's `_direct` bill spend goes to its usage rows (split by
    weight across channels, by tokens if they weigh nothing); the `_pool` goes by weight to
    the rows with no direct spend (to all rows when every model of the month has some).
    Rounding to 10 places leaves a residual that goes to the month's largest allocation, so
    allocations add up exactly to the month's spend."""
    month = Window.partitionBy("usage_month")
    by_model = Window.partitionBy("usage_month", "_norm")
    direct = F.col("_direct").isNotNull()
    in_model = F.when(F.col("_model_weight") > 0, F.col("_weight") / F.col("_model_weight")).when(
        F.col("_model_tokens") > 0,
        F.col("total_tokens").cast(TOKEN_COUNT) / F.col("_model_tokens").cast(TOKEN_COUNT),
    )
    biggest = month.orderBy(F.col("_alloc").desc(), F.col("_weight").desc(), "channel", "model")
    return (
        df.withColumn("_model_weight", F.sum("_weight").over(by_model).cast(WEIGHT))
        .withColumn("_model_tokens", F.sum("total_tokens").over(by_model))
        .withColumn("_has_pool", F.max(F.when(direct, 0).otherwise(1)).over(month))
        .withColumn("_candidate", ~direct | (F.col("_has_pool") == 0))
        .withColumn(
            "_pool_weight",
            F.sum(F.when(F.col("_candidate"), F.col("_weight"))).over(month).cast(WEIGHT),
        )
        .withColumn(
            "_alloc",
            F.coalesce(F.when(direct, _part(F.col("_direct"), in_model)), F.lit(0))
            + F.coalesce(
                F.when(
                    F.col("_candidate") & (F.col("_pool_weight") > 0),
                    _part(F.col("_pool"), F.col("_weight") / F.col("_pool_weight")),
                ),
                F.lit(0),
            ),
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
    )


def usage_weights(
    usage_facts: DataFrame, prices: DataFrame | None = None, rule: AllocationRule | None = None
) -> DataFrame:
    """Per month, channel and model: the month's usage (tokens, requests) and `_weight`, what
    it weighs in an allocation under the rule (config/unit_cost_allocation.yaml): by default
    the usage priced at the price sheet. Unit cost and unit margin allocate by it."""
    rule = rule or AllocationRule.load()
    key = ["usage_month", "channel", "model"]
    daily = daily_usage(usage_facts)
    return (
        _month_usage(daily)
        .join(priced_usage(daily, prices), key, how="left")
        .transform(lambda df: _weights(df, rule))
    )


def unit_cost_monthly(
    usage_facts: DataFrame,
    billing_lines: DataFrame,
    prices: DataFrame | None = None,
    rule: AllocationRule | None = None,
) -> DataFrame:
    """Grain: month, channel, model. A month's inference spend (billed cost, USD) is
    allocated to the month's usage: spend the bill carries per model (billing lines with a
    model_id matching a usage model) to that model, the rest by weight — by default the usage
    priced at the price sheet, so models with different prices get different costs per 1M
    tokens (config/unit_cost_allocation.yaml, docs/reports.md "Unit cost")."""
    return unit_cost_from_weights(usage_weights(usage_facts, prices, rule), billing_lines)


def unit_cost_from_weights(usage: DataFrame, billing_lines: DataFrame) -> DataFrame:
    """`unit_cost_monthly` of `usage_weights` computed once (the aggregate step writes them
    under the run: unit margin allocates by the same weights)."""
    spend, direct = _month_spend(billing_lines, usage)
    out = (
        usage.join(spend, "usage_month", how="left")
        .join(direct, ["usage_month", "_norm"], how="left")
        .withColumn("_month_spend", F.coalesce("_month_spend", F.lit(0).cast(MONEY)))
        .withColumn("_pool", F.coalesce("_pool", F.lit(0).cast(MONEY)))
        .transform(_allocate)
        .withColumn(
            "cost_per_1m_tokens_usd",
            ratio(F.col("allocated_spend_usd"), _millions(F.col("total_tokens"))),
        )
    )
    return select_mart(out, "unit_cost_monthly")
