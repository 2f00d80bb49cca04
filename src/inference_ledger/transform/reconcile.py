"""Revenue-share reconciliation, both directions, by calendar quarter.

Per (period, agreement, direction): basis -> expected share (by the term in effect on each
revenue date, capped cumulatively) -> settled (effective statements) -> variance -> status.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger.periods import quarters_between
from inference_ledger.transform.contract import ratio, select_mart

MONEY = T.DecimalType(38, 10)
RATE = T.DecimalType(18, 10)
_AMT = T.DecimalType(24, 10)
_R = T.DecimalType(13, 10)


def quarter_label(c: Column) -> Column:
    return F.concat(F.year(c).cast("string"), F.lit("-Q"), F.quarter(c).cast("string"))


def periods_frame(spark: SparkSession, start: date, end: date) -> DataFrame:
    rows = [(q.label, q.start, q.end) for q in quarters_between(start, end)]
    schema = "period_label string, period_start date, period_end date"
    return spark.createDataFrame(rows, schema)


def agreement_periods(terms: DataFrame, periods: DataFrame) -> DataFrame:
    """Every quarter an agreement's terms are in effect for at least one day."""
    far = F.lit("9999-12-31").cast("date")
    overlap = (F.col("effective_from") < F.col("period_end")) & (
        F.coalesce(F.col("effective_to"), far) > F.col("period_start")
    )
    return (
        terms.join(periods, overlap)
        .groupBy("period_label", "period_start", "period_end", "agreement_id", "direction")
        .agg(
            F.first("counterparty").alias("counterparty"),
            F.max("payment_terms_days").alias("payment_terms_days"),
        )
    )


def revenue_basis(revenue_lines: DataFrame, terms: DataFrame) -> DataFrame:
    """`revenue:` agreements: basis = revenue of the basis product lines; expected at the rate
    in effect on each revenue date (so a mid-period rate change splits correctly)."""
    rev_terms = terms.filter(F.col("basis").startswith("revenue:")).withColumn(
        "product_line", F.explode(F.split(F.substring("basis", 9, 1000), r"\|"))
    )
    far = F.lit("9999-12-31").cast("date")
    joined = revenue_lines.join(
        rev_terms,
        (revenue_lines.product_line == rev_terms.product_line)
        & (F.col("revenue_date") >= F.col("effective_from"))
        & (F.col("revenue_date") < F.coalesce(F.col("effective_to"), far)),
    )
    return joined.groupBy(
        quarter_label(F.col("revenue_date")).alias("period_label"), "agreement_id", "direction"
    ).agg(
        F.sum("amount_usd").alias("basis_usd"),
        F.sum((F.col("amount_usd").cast(_AMT) * F.col("rate").cast(_R)).cast(MONEY)).alias(
            "uncapped_expected_usd"
        ),
    )


def settled(settlements: DataFrame) -> DataFrame:
    """Effective statements per agreement, direction and the quarter their period starts in."""
    return settlements.groupBy(
        quarter_label(F.col("period_start")).alias("period_label"), "agreement_id", "direction"
    ).agg(
        F.sum("amount_usd").alias("settled_usd"),
        F.sum("reported_basis_usd").alias("reported_basis_usd"),
        F.concat_ws(",", F.sort_array(F.collect_list("statement_id"))).alias("statement_ids"),
        F.count(F.lit(1)).alias("statements"),
    )


def reported_basis(terms: DataFrame, settled_df: DataFrame, periods: DataFrame) -> DataFrame:
    """`reported` agreements: basis = what the counterparty reports on its statements; the
    rate is the term in effect at the period start."""
    rep = terms.filter(F.col("basis") == "reported")
    far = F.lit("9999-12-31").cast("date")
    in_effect = rep.join(
        periods,
        (F.col("effective_from") <= F.col("period_start"))
        & (F.coalesce("effective_to", far) > F.col("period_start")),
    ).select("period_label", "agreement_id", "direction", "rate")
    return in_effect.join(settled_df, ["period_label", "agreement_id", "direction"], "left").select(
        "period_label",
        "agreement_id",
        "direction",
        F.col("reported_basis_usd").alias("basis_usd"),
        (F.col("reported_basis_usd").cast(_AMT) * F.col("rate").cast(_R))
        .cast(MONEY)
        .alias("uncapped_expected_usd"),
    )


def with_cap(df: DataFrame, caps: DataFrame) -> DataFrame:
    """Expected amounts accumulate per agreement and direction against the cap, in period order."""
    w = (
        Window.partitionBy("agreement_id", "direction")
        .orderBy("period_start")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    df = df.join(caps, ["agreement_id", "direction"], "left")
    cum = F.sum(F.coalesce("uncapped_expected_usd", F.lit(0).cast(MONEY))).over(w)
    before = cum - F.coalesce("uncapped_expected_usd", F.lit(0).cast(MONEY))
    room = F.greatest(F.col("cap_amount") - before, F.lit(0).cast(MONEY))
    expected = F.when(F.col("cap_amount").isNull(), F.col("uncapped_expected_usd")).otherwise(
        F.least(F.col("uncapped_expected_usd"), room)
    )
    used = F.least(cum, F.col("cap_amount"))
    return (
        df.withColumn("expected_usd", expected)
        .withColumn("cap_used_usd", F.when(F.col("cap_amount").isNotNull(), used))
        .withColumn("cap_remaining_usd", F.col("cap_amount") - F.col("cap_used_usd"))
    )


def with_status(df: DataFrame, as_of: date) -> DataFrame:
    tol = F.greatest(
        F.col("tolerance_abs"), F.abs(F.coalesce("expected_usd", F.lit(0))) * F.col("tolerance_pct")
    )
    due = F.date_add(F.col("period_end"), F.col("payment_terms_days").cast("int"))
    has_expectation = F.col("expected_usd").isNotNull()
    status = (
        F.when(F.col("settled_usd").isNull() & (F.lit(as_of) < due), F.lit("pending"))
        .when(F.col("settled_usd").isNull(), F.lit("missing_settlement"))
        .when(~has_expectation, F.lit("unexpected_settlement"))
        .when(F.abs(F.col("variance_usd")) <= tol, F.lit("matched"))
        .when(F.col("variance_usd") < 0, F.lit("underpaid"))
        .otherwise(F.lit("overpaid"))
    )
    return df.withColumn("status", status)


def revshare_reconciliation(
    terms: DataFrame,
    revenue_lines: DataFrame,
    settlements: DataFrame,
    periods: DataFrame,
    as_of: date,
) -> DataFrame:
    """Grain: one row per period, agreement and direction (`is_adjustment` false here)."""
    settled_df = settled(settlements)
    basis = revenue_basis(revenue_lines, terms).unionByName(
        reported_basis(terms, settled_df, periods)
    )
    scaffold = agreement_periods(terms, periods)
    # A settlement for a period with no terms in effect still shows, as unexpected.
    orphan = (
        settled_df.join(periods, "period_label")
        .join(
            scaffold.select("period_label", "agreement_id", "direction"),
            ["period_label", "agreement_id", "direction"],
            "left_anti",
        )
        .join(
            terms.groupBy("agreement_id", "direction").agg(
                F.first("counterparty").alias("counterparty"),
                F.max("payment_terms_days").alias("payment_terms_days"),
            ),
            ["agreement_id", "direction"],
            "left",
        )
        .select(
            "period_label",
            "period_start",
            "period_end",
            "agreement_id",
            "direction",
            "counterparty",
            "payment_terms_days",
        )
    )
    rows = scaffold.unionByName(orphan)
    term_facts = terms.groupBy("agreement_id", "direction").agg(
        F.max("tolerance_abs").alias("tolerance_abs"),
        F.max("tolerance_pct").alias("tolerance_pct"),
        F.max("cap_amount").alias("cap_amount"),
    )
    df = (
        rows.join(basis, ["period_label", "agreement_id", "direction"], "left")
        .join(settled_df, ["period_label", "agreement_id", "direction"], "left")
        .join(term_facts.drop("cap_amount"), ["agreement_id", "direction"], "left")
        .transform(
            lambda d: with_cap(d, term_facts.select("agreement_id", "direction", "cap_amount"))
        )
        .withColumn(
            "variance_usd", F.col("settled_usd") - F.coalesce("expected_usd", F.lit(0).cast(MONEY))
        )
        .withColumn(
            "variance_pct",
            ratio(F.col("variance_usd"), F.col("expected_usd")),
        )
        .withColumn(
            "rate",
            ratio(F.col("expected_usd"), F.col("basis_usd")),
        )
        .withColumn(
            "implied_basis_usd",
            ratio(F.col("settled_usd"), F.col("rate")),
        )
        .transform(lambda d: with_status(d, as_of))
        .withColumn("is_adjustment", F.lit(False))
    )
    return select_mart(df, "revshare_reconciliation")
