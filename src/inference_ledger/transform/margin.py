"""Unit margin per 1M tokens by month, channel and model (marts.unit_margin_monthly).

Revenue (first-party revenue, or the revenue share received for the partner channel), the
inference cost unit cost allocated and the revenue share paid, each attributed to the models
of a month by the rules of config/unit_margin_allocation.yaml; every split adds up exactly to
what it splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from inference_ledger.transform.contract import minus, ratio, select_mart
from inference_ledger.transform.spend import AMOUNT, SHARE, WEIGHT, _millions

UNATTRIBUTED = "(unattributed)"
DEFAULT_MARGIN_RULE = (
    Path(__file__).resolve().parent.parent / "config" / "unit_margin_allocation.yaml"
)
KEY = ["usage_month", "channel", "model"]
# What each allocated amount is: first-party revenue, revenue share received or paid.
REVENUE, RECEIVED, PAID = "revenue", "received", "paid"


@dataclass(frozen=True)
class MarginRule:
    """config/unit_margin_allocation.yaml: which channel is first-party and which product lines
    of the revenue ledger are its revenue; which channel is the partner's resale."""

    version: int
    first_party_channel: str = "openai"
    product_lines: tuple[str, ...] = ("*",)
    partner_channel: str = "azure_openai"

    @classmethod
    def load(cls, path: Path | None = None) -> MarginRule:
        path = path or DEFAULT_MARGIN_RULE
        doc = yaml.safe_load(path.read_text()) or {}
        first = doc.get("first_party") or {}
        partner = doc.get("partner") or {}
        lines = first.get("product_lines", ["*"])
        fp, pc = first.get("channel"), partner.get("channel")
        if not isinstance(fp, str) or not isinstance(pc, str) or not fp or not pc:
            raise ValueError(f"{path}: first_party.channel and partner.channel must be named")
        if fp == pc:
            raise ValueError(f"{path}: first_party.channel and partner.channel must differ")
        if not isinstance(lines, list) or not lines or not all(isinstance(x, str) for x in lines):
            raise ValueError(f"{path}: first_party.product_lines must be a list of names or [*]")
        if not isinstance(doc.get("version"), int):
            raise ValueError(f"{path}: version must be an integer")
        return cls(doc["version"], fp, tuple(lines), pc)


def split(
    amounts: DataFrame,
    weights: DataFrame,
    on: list[str],
    keys: list[str],
    targets: list[str],
    fallback: dict[str, Column],
) -> DataFrame:
    """Each amount (`keys`, `_amount`) spread over the `weights` rows (`on`, `targets`,
    `_weight`) it joins on `on`, in proportion to the positive weights. Parts are rounded to
    10 places and the residual goes to the largest part, so the parts add up exactly to the
    amount. An amount with no positive weight goes whole to one row whose targets are
    `fallback` (columns of `amounts`). Returns (keys, targets, `_part`)."""
    positive = weights.filter(F.col("_weight") > 0)
    by_amount = Window.partitionBy(*keys)
    largest = by_amount.orderBy(F.abs("_raw").desc(), F.col("_weight").desc(), *targets)
    share = (F.col("_weight").cast(WEIGHT) / F.col("_total")).cast(SHARE)
    parts = (
        amounts.join(positive, on, how="inner")
        .withColumn("_total", F.sum("_weight").over(by_amount).cast(WEIGHT))
        .withColumn("_raw", F.round(F.col("_amount").cast(WEIGHT) * share, 10))
        .withColumn(
            "_residual",
            F.col("_amount").cast(AMOUNT) - F.sum("_raw").over(by_amount).cast(AMOUNT),
        )
        .withColumn(
            "_part",
            F.col("_raw").cast(AMOUNT)
            + F.when(F.row_number().over(largest) == 1, F.col("_residual"))
            .otherwise(F.lit(0))
            .cast(AMOUNT),
        )
        .select(*keys, *targets, "_part")
    )
    unweighted = (
        amounts.join(positive.select(*on).distinct(), on, how="left_anti")
        .filter(F.col("_amount") != 0)
        .select(
            *keys,
            *[fallback[t].alias(t) for t in targets],
            F.col("_amount").cast(AMOUNT).alias("_part"),
        )
    )
    return parts.unionByName(unweighted)


def first_party_revenue(revenue_lines: DataFrame, rule: MarginRule) -> DataFrame:
    """Per month: the first-party channel's revenue (`_amount`, USD): revenue ledger lines of
    the rule's product lines, by revenue date."""
    lines = revenue_lines
    if "*" not in rule.product_lines:
        lines = lines.filter(F.col("product_line").isin(*rule.product_lines))
    return lines.groupBy(F.trunc("revenue_date", "month").alias("usage_month")).agg(
        F.lit(rule.first_party_channel).alias("channel"),
        F.lit(REVENUE).alias("kind"),
        F.sum("amount_usd").alias("_amount"),
    )


def _statements(settlements: DataFrame, terms: DataFrame, rule: MarginRule) -> DataFrame:
    """Effective statements with their channel, basis and the months they are spread over
    (`_from` .. `_to`, exclusive: their period within the quarter of its start)."""
    basis = terms.groupBy("agreement_id", "direction").agg(
        F.max_by("basis", "effective_from").alias("basis")
    )
    revenue_basis = F.col("basis").startswith("revenue:")
    payable = F.col("direction") == "payable"
    channel = F.when(payable, F.lit(rule.first_party_channel)).otherwise(
        F.lit(rule.partner_channel)
    )
    quarter_end = F.add_months(F.trunc("period_start", "quarter"), 3)
    return settlements.join(basis, ["agreement_id", "direction"], how="left").select(
        "statement_id",
        "direction",
        channel.alias("channel"),
        F.coalesce(revenue_basis, F.lit(False)).alias("_revenue_basis"),
        F.substring("basis", 9, 1000).alias("_lines"),
        F.trunc("period_start", "month").alias("_from"),
        F.least(F.col("period_end"), quarter_end).alias("_to"),
        F.when(payable, F.lit(PAID)).otherwise(F.lit(RECEIVED)).alias("kind"),
        F.col("amount_usd").alias("_amount"),
    )


def _statement_month_weights(
    statements: DataFrame, revenue_lines: DataFrame, usage: DataFrame
) -> DataFrame:
    """(statement_id, usage_month, `_weight`): a `revenue:` statement's months weigh their
    revenue of the basis product lines, the others' the usage weight of their channel."""
    in_period = (F.col("usage_month") >= F.col("_from")) & (F.col("usage_month") < F.col("_to"))
    by_line = revenue_lines.groupBy(
        F.trunc("revenue_date", "month").alias("usage_month"), "product_line"
    ).agg(F.sum("amount_usd").alias("_rev"))
    revenue_weights = (
        statements.filter(F.col("_revenue_basis"))
        .select(
            "statement_id",
            "_from",
            "_to",
            F.explode(F.array_distinct(F.split("_lines", r"\|"))).alias("product_line"),
        )
        .join(by_line, "product_line", how="inner")
        .filter(in_period)
        .groupBy("statement_id", "usage_month")
        .agg(F.sum("_rev").alias("_weight"))
    )
    by_channel = usage.groupBy("usage_month", "channel").agg(F.sum("_weight").alias("_weight"))
    usage_weights = (
        statements.filter(~F.col("_revenue_basis"))
        .join(by_channel, "channel", how="inner")
        .filter(in_period)
        .select("statement_id", "usage_month", "_weight")
    )
    return revenue_weights.unionByName(usage_weights)


def monthly_amounts(
    usage: DataFrame,
    revenue_lines: DataFrame,
    settlements: DataFrame,
    terms: DataFrame,
    rule: MarginRule,
) -> DataFrame:
    """(usage_month, channel, kind, `_amount`): first-party revenue and every statement split
    to months (by revenue of its basis product lines, or by its channel's usage weight)."""
    statements = _statements(settlements, terms, rule)
    months = split(
        statements,
        _statement_month_weights(statements, revenue_lines, usage),
        on=["statement_id"],
        keys=["statement_id", "channel", "kind"],
        targets=["usage_month"],
        fallback={"usage_month": F.col("_from")},
    )
    return (
        months.groupBy("usage_month", "channel", "kind")
        .agg(F.sum("_part").alias("_amount"))
        .unionByName(first_party_revenue(revenue_lines, rule))
        .groupBy("usage_month", "channel", "kind")
        .agg(F.sum("_amount").alias("_amount"))
    )


def attributed_amounts(usage: DataFrame, monthly: DataFrame) -> DataFrame:
    """(usage_month, channel, model, kind, `_part`): the `monthly_amounts` split to the models
    of their channel by usage weight."""
    return split(
        monthly,
        usage.select(*KEY, "_weight"),
        on=["usage_month", "channel"],
        keys=["usage_month", "channel", "kind"],
        targets=["model"],
        fallback={"model": F.lit(UNATTRIBUTED)},
    )


def _sum_of(kinds: tuple[str, ...]) -> Column:
    return F.coalesce(F.sum(F.when(F.col("kind").isin(*kinds), F.col("_part"))), F.lit(0))


def unit_margin_monthly(
    unit_cost: DataFrame,
    usage: DataFrame,
    revenue_lines: DataFrame,
    settlements: DataFrame,
    terms: DataFrame,
    rule: MarginRule | None = None,
) -> DataFrame:
    """Grain: month, channel, model. `unit_cost` is marts.unit_cost_monthly's frame, `usage`
    spend.usage_weights of the same usage; revenue lines and statements of the same months.
    margin = revenue - inference cost - revenue share paid (config/unit_margin_allocation.yaml).
    """
    rule = rule or MarginRule.load()
    monthly = monthly_amounts(usage, revenue_lines, settlements, terms, rule)
    return unit_margin_from_monthly(unit_cost, usage, monthly, rule)


def unit_margin_from_monthly(
    unit_cost: DataFrame, usage: DataFrame, monthly: DataFrame, rule: MarginRule
) -> DataFrame:
    """`unit_margin_monthly` of `monthly_amounts` computed once (the aggregate step writes them
    under the run: the split to models reads them twice)."""
    amounts = (
        attributed_amounts(usage, monthly)
        .groupBy(*KEY)
        .agg(
            _sum_of((REVENUE, RECEIVED)).alias("revenue_usd"),
            _sum_of((PAID,)).alias("revshare_paid_usd"),
        )
    )
    cost = unit_cost.select(
        *KEY, "total_tokens", F.col("allocated_spend_usd").alias("inference_cost_usd")
    )
    basis = (
        F.when(F.col("channel") == rule.first_party_channel, F.lit("first_party_revenue"))
        .when(F.col("channel") == rule.partner_channel, F.lit("revshare_received"))
        .otherwise(F.lit("none"))
    )
    zero = F.lit(0).cast(AMOUNT)
    out = (
        cost.join(amounts, KEY, how="full")
        .withColumn("total_tokens", F.coalesce("total_tokens", F.lit(0)))
        .withColumn("revenue_usd", F.coalesce(F.col("revenue_usd").cast(AMOUNT), zero))
        .withColumn("inference_cost_usd", F.coalesce(F.col("inference_cost_usd"), zero))
        .withColumn("revshare_paid_usd", F.coalesce(F.col("revshare_paid_usd").cast(AMOUNT), zero))
        .withColumn("revenue_basis", basis)
        .withColumn(
            "margin_usd",
            minus(minus("revenue_usd", "inference_cost_usd"), "revshare_paid_usd"),
        )
        .withColumn(
            "margin_per_1m_tokens_usd",
            ratio(F.col("margin_usd"), _millions(F.col("total_tokens"))),
        )
        .withColumn("allocation_version", F.lit(rule.version))
    )
    return select_mart(out, "unit_margin_monthly")
