"""Projections, kept apart from the actuals: the next quarters of inference spend and revenue
share (marts.quarterly_forecast) and the quarter a capped agreement's cap is projected to be
reached (marts.cap_projection). One explainable growth fit, config/outlook.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger.spark import local_frame
from inference_ledger.transform.contract import minus, ratio, select_mart
from inference_ledger.transform.reconcile import quarter_label

DEFAULT_RULE = Path(__file__).resolve().parent.parent / "config" / "outlook.yaml"
AMT = T.DecimalType(24, 10)
# A quarter-over-quarter ratio of 1000x or more (a quarter after a near-empty one: a late
# entry, a first month of usage) is no growth measure: try_cast makes it null, so the fit is
# not measurable rather than the run failing on an overflow. Likewise a projection past AMT's
# range (10^14 USD) is null, not an error.
GROWTH = T.DecimalType(13, 10)
METRICS = ("inference_spend_usd", "revshare_paid_usd", "revshare_received_usd")
# The direction of the agreements whose terms bound each revenue-share metric.
METRIC_DIRECTION = {"revshare_paid_usd": "payable", "revshare_received_usd": "receivable"}


@dataclass(frozen=True)
class OutlookRule:
    """config/outlook.yaml."""

    version: int
    trailing_quarters: int = 4
    forecast_quarters: int = 4
    cap_horizon_quarters: int = 40

    @classmethod
    def load(cls, path: Path | None = None) -> OutlookRule:
        path = path or DEFAULT_RULE
        doc = yaml.safe_load(path.read_text()) or {}
        values = {}
        for key, low, high in (
            ("trailing_quarters", 2, 12),
            ("forecast_quarters", 1, 12),
            ("cap_horizon_quarters", 1, 200),
        ):
            v = doc.get(key, getattr(cls, key))
            if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
                raise ValueError(f"{path}: {key} must be an integer from {low} to {high}")
            values[key] = v
        if not isinstance(doc.get("version"), int):
            raise ValueError(f"{path}: version must be an integer")
        return cls(doc["version"], **values)

    def method(self, what: str) -> str:
        n = self.trailing_quarters
        return (
            f"PROJECTION: {what} at the mean of the {n - 1} quarter-over-quarter growth ratios"
            f" of the trailing {n} quarters through the basis quarter, compounded quarterly;"
            f" band at the lowest and highest of those ratios (config/outlook.yaml version"
            f" {self.version})"
        )


def with_growth(history: DataFrame, keys: list[str], rule: OutlookRule) -> DataFrame:
    """`history` (keys, period_start, value_usd; one row per consecutive quarter) with the
    fit of each quarter as a basis: `growth_ratio` (mean), `growth_ratio_low` / `_high`
    (null when a ratio cannot be measured or the window is short)."""
    n = rule.trailing_quarters
    window = Window.partitionBy(*keys).orderBy("period_start").rowsBetween(-(n - 1), 0)
    vals = F.collect_list("value_usd").over(window)
    ratios = F.transform(
        F.sequence(F.lit(2), F.lit(n)),
        lambda i: ratio(F.element_at("_vals", i), F.element_at("_vals", i - 1)).try_cast(GROWTH),
    )
    total = F.aggregate("_ratios", F.lit(0).cast(AMT), lambda acc, x: (acc + x).cast(AMT))
    measurable = (F.size("_vals") == n) & ~F.exists("_ratios", lambda x: x.isNull())
    return (
        history.withColumn("_vals", vals)
        .withColumn("_ratios", F.when(F.size("_vals") == n, ratios))
        .withColumn("growth_ratio", F.when(measurable, ratio(total, F.lit(n - 1))))
        .withColumn("growth_ratio_low", F.when(measurable, F.array_min("_ratios")))
        .withColumn("growth_ratio_high", F.when(measurable, F.array_max("_ratios")))
        .drop("_vals", "_ratios")
    )


def compounded(base: Column, growth: Column, quarters: Column) -> Column:
    """base x growth^quarters, one quarter at a time, each rounded to 10 places."""
    return F.aggregate(
        F.sequence(F.lit(1), quarters),
        base.cast(AMT),
        lambda acc, _: F.round(acc * growth.try_cast(GROWTH), 10).try_cast(AMT),
    )


def metric_history(
    periods: DataFrame, billing_lines: DataFrame, reconciliation: DataFrame
) -> DataFrame:
    """(metric, period_label, period_start, value_usd) for every quarter of `periods`:
    inference spend (billed cost of workload `inference`) and the settled revenue share paid
    and received (regular reconciliation rows), 0 where there is none."""
    spend = (
        billing_lines.filter(F.col("workload") == "inference")
        .groupBy(quarter_label(F.col("usage_date")).alias("period_label"))
        .agg(F.sum("billed_cost_usd").alias("value_usd"))
        .withColumn("metric", F.lit("inference_spend_usd"))
    )
    share = (
        reconciliation.filter(~F.col("is_adjustment"))
        .groupBy("period_label", "direction")
        .agg(F.sum("settled_usd").alias("value_usd"))
        .select(
            "period_label",
            "value_usd",
            F.when(F.col("direction") == "payable", F.lit("revshare_paid_usd"))
            .otherwise(F.lit("revshare_received_usd"))
            .alias("metric"),
        )
    )
    metrics = local_frame(periods.sparkSession, [(m,) for m in METRICS], "metric string")
    return (
        periods.crossJoin(metrics)
        .join(spend.unionByName(share), ["period_label", "metric"], how="left")
        .select(
            "metric",
            "period_label",
            "period_start",
            F.coalesce(F.col("value_usd"), F.lit(0)).cast(AMT).alias("value_usd"),
        )
    )


def _far() -> Column:
    return F.lit("9999-12-31").cast("date")


def _in_range(start: date, end: date) -> Column:
    return (F.col("period_start") >= F.lit(start)) & (F.col("period_start") < F.lit(end))


def quarterly_forecast(
    history: DataFrame, terms: DataFrame, start: date, end: date, rule: OutlookRule | None = None
) -> DataFrame:
    """Grain: basis quarter (in [start, end)), metric, forecast quarter. `history` is
    metric_history over every quarter up to the basis quarters; a revenue-share forecast
    quarter that starts after every term of its direction has ended is 0."""
    rule = rule or OutlookRule.load()
    ends = terms.groupBy("direction").agg(
        F.max(F.coalesce("effective_to", _far())).alias("_terms_end")
    )
    direction = F.create_map(*[F.lit(x) for kv in METRIC_DIRECTION.items() for x in kv])
    horizons = history.sparkSession.range(1, rule.forecast_quarters + 1).select(
        F.col("id").cast("int").alias("horizon_quarters")
    )
    ended = F.col("_terms_end").isNotNull() & (F.col("forecast_start") >= F.col("_terms_end"))

    def projected(growth: str) -> Column:
        value = compounded(F.col("value_usd"), F.col(growth), F.col("horizon_quarters"))
        return F.when(ended, F.lit(0).cast(AMT)).otherwise(value)

    out = (
        with_growth(history, ["metric"], rule)
        .filter(_in_range(start, end))
        .crossJoin(horizons)
        .withColumn("forecast_start", F.add_months("period_start", F.col("horizon_quarters") * 3))
        .withColumn("direction", direction[F.col("metric")])
        .join(ends, "direction", how="left")
        .select(
            F.col("period_label").alias("basis_period_label"),
            F.col("period_start").alias("basis_period_start"),
            "metric",
            quarter_label(F.col("forecast_start")).alias("period_label"),
            F.col("forecast_start").alias("period_start"),
            "horizon_quarters",
            F.col("value_usd").alias("basis_value_usd"),
            "growth_ratio",
            "growth_ratio_low",
            "growth_ratio_high",
            projected("growth_ratio").alias("projected_usd"),
            projected("growth_ratio_low").alias("projected_low_usd"),
            projected("growth_ratio_high").alias("projected_high_usd"),
            F.lit(rule.method("the basis quarter's value")).alias("method"),
            F.lit(True).alias("is_projection"),
        )
    )
    return select_mart(out, "quarterly_forecast")


def quarters_to_cap(expected: Column, growth: Column, room: Column, horizon: Column) -> Column:
    """The first quarter k (1..horizon) in which the expected share projected from `expected`
    at `growth` (compounded as `compounded`) has accumulated to `room`; null if none. Stops
    multiplying once found."""
    start = F.struct(
        expected.cast(AMT).alias("amount"),
        F.lit(0).cast(AMT).alias("cum"),
        F.lit(None).cast("int").alias("found"),
    )

    def step(acc: Column, k: Column) -> Column:
        amount = F.round(acc["amount"] * growth.try_cast(GROWTH), 10).try_cast(AMT)
        cum = (acc["cum"] + amount).try_cast(AMT)
        return F.when(acc["found"].isNotNull(), acc).otherwise(
            F.struct(
                amount.alias("amount"),
                cum.alias("cum"),
                F.when(cum >= room, k).alias("found"),
            )
        )

    search = F.aggregate(F.sequence(F.lit(1), horizon), start, step, lambda acc: acc["found"])
    return F.when((horizon >= 1) & growth.isNotNull(), search)


_CAP_KEY = ["agreement_id", "direction"]


def capped_agreements(terms: DataFrame) -> DataFrame:
    """Agreements with a cap: the cap and the end of their last term."""
    return (
        terms.filter(F.col("cap_amount").isNotNull())
        .groupBy(*_CAP_KEY)
        .agg(
            F.max("cap_amount").alias("cap_usd"),
            F.max(F.coalesce("effective_to", _far())).alias("_terms_end"),
        )
    )


def cap_history(reconciliation: DataFrame, capped: DataFrame) -> DataFrame:
    """Per capped agreement and quarter: the expected share (`value_usd`), the cap used to
    date and the quarter the cap was reached (actual, null until then)."""
    key = _CAP_KEY
    so_far = (
        Window.partitionBy(*key).orderBy("period_start").rowsBetween(Window.unboundedPreceding, 0)
    )
    reached = F.col("cap_used_usd") >= F.col("cap_usd")
    return (
        reconciliation.filter(~F.col("is_adjustment"))
        .join(capped, key, how="inner")
        .select(*key, "period_label", "period_start", "cap_usd", "_terms_end",
                F.coalesce("expected_usd", F.lit(0)).cast(AMT).alias("value_usd"),
                F.coalesce("cap_used_usd", F.lit(0)).alias("cap_used_usd"))  # fmt: skip
        .withColumn("cap_reached_period_label", F.min(F.when(reached, F.col("period_label"))).over(so_far))
    )  # fmt: skip


def cap_projection(
    reconciliation: DataFrame,
    terms: DataFrame,
    start: date,
    end: date,
    rule: OutlookRule | None = None,
) -> DataFrame:
    """Grain: capped agreement, direction and basis quarter (in [start, end)). The cap used
    so far (actual), the quarter it was reached (actual), else the quarter it is projected to
    be reached at the trailing growth of the expected share, with the band's earliest and
    latest quarters. `reconciliation` holds every quarter of the agreements from their first
    term (caps accumulate over all of them)."""
    rule = rule or OutlookRule.load()
    key = _CAP_KEY
    history = cap_history(reconciliation, capped_agreements(terms))
    basis_end = F.add_months("period_start", 3)
    horizon = F.least(
        F.lit(rule.cap_horizon_quarters),
        F.ceil(F.months_between("_terms_end", basis_end) / 3).cast("int"),
    )
    room = minus("cap_usd", "cap_used_usd")

    def cap_quarter(growth: str) -> Column:
        k = quarters_to_cap(F.col("value_usd"), F.col(growth), room, F.col("_horizon"))
        label = quarter_label(F.add_months(basis_end, (k - 1) * 3))
        return F.when(F.col("cap_reached_period_label").isNull() & k.isNotNull(), label)

    out = (
        with_growth(history, key, rule)
        .filter(_in_range(start, end))
        .withColumn("_horizon", horizon)
        .select(
            *key,
            F.col("period_label").alias("basis_period_label"),
            F.col("period_start").alias("basis_period_start"),
            "cap_usd",
            "cap_used_usd",
            F.greatest(room, F.lit(0)).alias("cap_remaining_usd"),
            F.col("value_usd").alias("basis_expected_usd"),
            "growth_ratio",
            "growth_ratio_low",
            "growth_ratio_high",
            "cap_reached_period_label",
            cap_quarter("growth_ratio").alias("projected_cap_period_label"),
            cap_quarter("growth_ratio_high").alias("projected_cap_period_label_early"),
            cap_quarter("growth_ratio_low").alias("projected_cap_period_label_late"),
            F.when(
                F.col("_horizon") >= 1,
                quarter_label(F.add_months(basis_end, (F.col("_horizon") - 1) * 3)),
            ).alias("horizon_end_period_label"),
            F.lit(rule.method("the quarterly expected share")).alias("method"),
            F.lit(True).alias("is_projection"),
        )
    )
    return select_mart(out, "cap_projection")
