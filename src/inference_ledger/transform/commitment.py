"""Cloud consumption commitments: eligible spend, burn-down and the projected end of term
(marts.commitment_burndown; config/commitments.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger.fx import to_usd
from inference_ledger.ingest.billing import contract_applied_elements
from inference_ledger.ingest.contract_commitments import BINDING
from inference_ledger.transform.contract import minus, ratio, select_mart

DEFAULT_RULE = Path(__file__).resolve().parent.parent / "config" / "commitments.yaml"
_AMT = T.DecimalType(24, 10)
_DAYS = T.DecimalType(6, 0)


@dataclass(frozen=True)
class BurndownRule:
    """config/commitments.yaml: the trailing window of the run-rate projection."""

    version: int
    trailing_months: int = 3

    @classmethod
    def load(cls, path: Path | None = None) -> BurndownRule:
        path = path or DEFAULT_RULE
        doc = yaml.safe_load(path.read_text()) or {}
        months = doc.get("trailing_months", 3)
        if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 24:
            raise ValueError(f"{path}: trailing_months must be an integer from 1 to 24")
        if not isinstance(doc.get("version"), int):
            raise ValueError(f"{path}: version must be an integer")
        return cls(doc["version"], months)

    @property
    def method(self) -> str:
        return (
            f"daily average eligible spend of the trailing {self.trailing_months} months of the"
            " term through this month x days of the term left (config/commitments.yaml"
            f" version {self.version})"
        )


def _names(c: str) -> Column:
    """A |-separated list column as a trimmed array (empty when null)."""
    return F.transform(F.split(F.coalesce(F.col(c), F.lit("")), r"\|"), lambda x: F.trim(x))


def eligible_spend(commitments: DataFrame, billing_lines: DataFrame) -> DataFrame:
    """(commitment_id, month_start, eligible_spend_usd): billed cost of the lines inside each
    term that an eligible service or meter names; a line counts once per commitment."""
    terms = commitments.select(
        "commitment_id",
        F.col("provider").alias("_provider"),
        F.col("start_date").alias("_start"),
        F.col("end_date").alias("_end"),
        _names("eligible_services").alias("_services"),
        _names("eligible_meters").alias("_meters"),
    )
    eligible = (
        F.array_contains("_services", "*")
        | F.array_contains("_services", F.col("service_name"))
        | F.array_contains("_meters", F.col("sku_description"))
        | F.array_contains("_meters", F.col("sku_id"))
    )
    in_term = (F.col("usage_date") >= F.col("_start")) & (F.col("usage_date") < F.col("_end"))
    provider = F.col("_provider").isNull() | (F.col("_provider") == F.col("provider_name"))
    return (
        billing_lines.join(
            F.broadcast(terms), in_term & provider & F.coalesce(eligible, F.lit(False)), how="inner"
        )
        .groupBy("commitment_id", F.trunc("usage_date", "month").alias("month_start"))
        .agg(F.sum("billed_cost_usd").alias("eligible_spend_usd"))
    )


BY_CONTRACT_APPLIED = "ContractApplied"
BY_ELIGIBILITY = "eligible services and meters"
_COMMITMENT_COLUMNS = (
    "commitment_id", "counterparty", "amount_usd", "start_date", "end_date",
    "eligible_services", "eligible_meters", "provider",
)  # fmt: skip


def binding_commitments(feed: DataFrame, contract_commitments: DataFrame) -> DataFrame:
    """The finance feed's commitments, and the bill's own binding Spend commitments (FOCUS
    Contract Commitment dataset) that the feed does not name: a feed row restates one."""
    from_bill = contract_commitments.filter(
        (F.col("category") == "Spend")
        & F.col("lifecycle_status").isin(*BINDING)
        & F.col("amount_usd").isNotNull()
    ).select(
        "commitment_id",
        F.coalesce("provider", "contract_id", F.lit("(not named in the delivery)")).alias(
            "counterparty"
        ),
        "amount_usd",
        "start_date",
        "end_date",
        F.lit(None).cast("string").alias("eligible_services"),
        F.lit(None).cast("string").alias("eligible_meters"),
        "provider",
    )
    named = feed.select("commitment_id")
    return feed.select(*_COMMITMENT_COLUMNS).unionByName(
        from_bill.join(named, "commitment_id", how="left_anti")
    )


def applied_spend(billing_lines: DataFrame) -> DataFrame:
    """(commitment_id, month_start, eligible_spend_usd): what the bill's ContractApplied says
    each charge consumed of each commitment (ContractCommitmentAppliedCost, in the line's
    billing currency, converted at the line's rate)."""
    text = F.get_json_object("lineage", "$.ContractApplied")
    applied = (
        billing_lines.filter(text.isNotNull())
        .select(
            F.trunc("usage_date", "month").alias("month_start"),
            "fx_rate",
            F.explode(contract_applied_elements(text)).alias("_e"),
        )
        .select(
            F.col("_e.commitment_id").alias("commitment_id"),
            "month_start",
            F.col("_e.applied_cost").alias("_applied"),
            "fx_rate",
        )
        .filter(F.col("_applied").isNotNull())
    )
    return applied.groupBy("commitment_id", "month_start").agg(
        F.sum(to_usd("_applied")).alias("eligible_spend_usd")
    )


def consumed_spend(commitments: DataFrame, billing_lines: DataFrame) -> DataFrame:
    """(commitment_id, month_start, eligible_spend_usd, consumption_basis): a commitment that
    any charge's ContractApplied names is consumed by exactly what the bill applied to it;
    one no charge names, by the billed cost its eligible services or meters match."""
    applied = applied_spend(billing_lines)
    named = applied.select("commitment_id").distinct()
    by_rule = eligible_spend(commitments, billing_lines).join(
        named, "commitment_id", how="left_anti"
    )
    return by_rule.withColumn("consumption_basis", F.lit(BY_ELIGIBILITY)).unionByName(
        applied.withColumn("consumption_basis", F.lit(BY_CONTRACT_APPLIED))
    )


def term_months(commitments: DataFrame, end: date) -> DataFrame:
    """Every month of every term that starts before `end` (exclusive), with the part of the
    month inside the term (`_from` .. `_to`)."""
    last = F.trunc(F.date_sub("end_date", 1), "month")
    months = commitments.withColumn(
        "month_start",
        F.explode(F.sequence(F.trunc("start_date", "month"), last, F.expr("INTERVAL 1 MONTH"))),
    ).filter(F.col("month_start") < F.lit(end))
    return months.withColumn("_from", F.greatest("month_start", "start_date")).withColumn(
        "_to", F.least(F.add_months("month_start", 1), F.col("end_date"))
    )


def with_projection(df: DataFrame, rule: BurndownRule) -> DataFrame:
    """Cumulative consumption, what is left, the shares of term and commitment, and the
    projected end of term at the trailing daily run-rate (config/commitments.yaml)."""
    to_date = Window.partitionBy("commitment_id").orderBy("month_start")
    cumulative = to_date.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    trailing = to_date.rowsBetween(-(rule.trailing_months - 1), Window.currentRow)
    days_in_term = F.datediff("_to", "_from")
    rate = ratio(F.sum("eligible_spend_usd").over(trailing), F.sum("_days").over(trailing))
    projected = F.col("cumulative_consumed_usd").cast(_AMT) + F.round(
        F.col("daily_run_rate_usd").cast(_AMT) * F.col("days_left_in_term").cast(_DAYS), 10
    )
    variance = minus("projected_consumed_usd", "commitment_usd")
    return (
        df.withColumn("_days", days_in_term)
        .withColumn("cumulative_consumed_usd", F.sum("eligible_spend_usd").over(cumulative))
        .withColumn("remaining_usd", minus("commitment_usd", "cumulative_consumed_usd"))
        .withColumn(
            "term_elapsed_ratio",
            ratio(F.datediff("_to", "term_start"), F.datediff("term_end", "term_start")),
        )
        .withColumn(
            "consumed_ratio", ratio(F.col("cumulative_consumed_usd"), F.col("commitment_usd"))
        )
        .withColumn("daily_run_rate_usd", rate)
        .withColumn("days_left_in_term", F.datediff("term_end", "_to"))
        .withColumn("projected_consumed_usd", projected)
        .withColumn("projected_variance_usd", variance)
        .withColumn(
            "projection_status",
            F.when(F.col("projected_variance_usd") < 0, F.lit("shortfall"))
            .when(F.col("projected_variance_usd") > 0, F.lit("surplus"))
            .otherwise(F.lit("met")),
        )
        .withColumn("projection_method", F.lit(rule.method))
    )


def commitment_burndown(
    commitments: DataFrame,
    billing_lines: DataFrame,
    start: date,
    end: date,
    rule: BurndownRule | None = None,
) -> DataFrame:
    """Grain: commitment and month, for the months of each term inside [start, end).
    `billing_lines` must reach back to the terms' starts: consumption accumulates from there."""
    rule = rule or BurndownRule.load()
    spend = consumed_spend(commitments, billing_lines)
    basis = spend.select("commitment_id", "consumption_basis").distinct()
    df = (
        term_months(commitments, end)
        .select(
            "commitment_id",
            "month_start",
            "counterparty",
            F.col("start_date").alias("term_start"),
            F.col("end_date").alias("term_end"),
            F.col("amount_usd").alias("commitment_usd"),
            "_from",
            "_to",
        )
        .join(spend.drop("consumption_basis"), ["commitment_id", "month_start"], how="left")
        .join(basis, "commitment_id", how="left")
        .withColumn("eligible_spend_usd", F.coalesce("eligible_spend_usd", F.lit(0).cast(_AMT)))
        .withColumn("consumption_basis", F.coalesce("consumption_basis", F.lit(BY_ELIGIBILITY)))
        .transform(lambda d: with_projection(d, rule))
        .filter(F.col("month_start") >= F.lit(start))
    )
    return select_mart(df, "commitment_burndown")
