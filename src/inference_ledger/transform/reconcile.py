"""Revenue-share reconciliation, both directions, by calendar quarter.

Per (period, agreement, direction): basis -> expected share (by the term in effect on each
revenue date, capped cumulatively) -> settled (effective statements) -> variance -> status.
The `reported` direction is also cross-checked against usage of the partner's resale channel
priced with the price sheet. Late changes to closed periods become prior-period adjustment rows
in the first open period (`prior_period_adjustments`, computed in transform.adjustments).
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger.periods import quarters_between
from inference_ledger.spark import local_frame
from inference_ledger.transform.adjustments import (
    prior_period_adjustments as prior_period_adjustments,  # re-exported: steps and tests call it
)
from inference_ledger.transform.contract import minus, ratio, select_mart
from inference_ledger.transform.pricing import token_rows, with_price_sheet

MONEY = T.DecimalType(38, 10)
RATE = T.DecimalType(18, 10)
_AMT = T.DecimalType(24, 10)
_R = T.DecimalType(13, 10)
# tokens x unit price: decimal(15,0) x decimal(18,10) = decimal(34,10), every digit kept.
_TOKENS = T.DecimalType(15, 0)

# DESIGN.md: a `reported` basis is cross-checked against usage of the partner's resale channel.
USAGE_CHANNEL = "azure_openai"
# usage_facts.input_tokens includes the cached ones, which the price sheet prices separately.
TOKEN_TYPES = ("input", "cached_input", "output")
KEY = ["period_label", "agreement_id", "direction"]


def _far() -> Column:
    """Stands in for an open-ended effective_to."""
    return F.lit("9999-12-31").cast("date")


def _zero() -> Column:
    return F.lit(0).cast(MONEY)


def quarter_label(c: Column) -> Column:
    return F.concat(F.year(c).cast("string"), F.lit("-Q"), F.quarter(c).cast("string"))


def periods_frame(spark: SparkSession, start: date, end: date) -> DataFrame:
    rows = [(q.label, q.start, q.end) for q in quarters_between(start, end)]
    schema = "period_label string, period_start date, period_end date"
    return local_frame(spark, rows, schema)


def agreement_periods(terms: DataFrame, periods: DataFrame) -> DataFrame:
    """Every quarter an agreement's terms are in effect for at least one day, with the term
    in effect last in the quarter (its rate and basis stand in when there is no basis)."""
    overlap = (F.col("effective_from") < F.col("period_end")) & (
        F.coalesce(F.col("effective_to"), _far()) > F.col("period_start")
    )
    return (
        terms.join(periods, overlap, how="inner")
        .groupBy("period_label", "period_start", "period_end", "agreement_id", "direction")
        .agg(
            F.first("counterparty").alias("counterparty"),
            F.max("payment_terms_days").alias("payment_terms_days"),
            F.max_by("rate", "effective_from").alias("term_rate"),
            F.max_by("basis", "effective_from").alias("basis_definition"),
        )
    )


def revenue_basis(revenue_lines: DataFrame, terms: DataFrame) -> DataFrame:
    """`revenue:` agreements: basis = revenue of the basis product lines; expected at the rate
    in effect on each revenue date (so a mid-period rate change splits correctly)."""
    rev_terms = terms.filter(F.col("basis").startswith("revenue:")).withColumn(
        "product_line",
        F.explode(F.array_distinct(F.split(F.substring("basis", 9, 1000), r"\|"))),
    )
    joined = revenue_lines.join(
        rev_terms,
        (revenue_lines.product_line == rev_terms.product_line)
        & (F.col("revenue_date") >= F.col("effective_from"))
        & (F.col("revenue_date") < F.coalesce(F.col("effective_to"), _far())),
        how="inner",
    )
    return joined.groupBy(
        quarter_label(F.col("revenue_date")).alias("period_label"), "agreement_id", "direction"
    ).agg(
        F.sum("amount_usd").alias("basis_usd"),
        F.sum((F.col("amount_usd").cast(_AMT) * F.col("rate").cast(_R)).cast(MONEY)).alias(
            "uncapped_expected_usd"
        ),
        F.count(F.lit(1)).alias("basis_entry_count"),
    )


def settled(settlements: DataFrame) -> DataFrame:
    """Effective statements (the lake holds no superseded ones) per agreement, direction and
    the quarter their period starts in."""
    return settlements.groupBy(
        quarter_label(F.col("period_start")).alias("period_label"), "agreement_id", "direction"
    ).agg(
        F.sum("amount_usd").alias("settled_usd"),
        F.sum("reported_basis_usd").alias("statement_basis_usd"),
        F.concat_ws(",", F.sort_array(F.collect_list("statement_id"))).alias("statement_ids"),
        F.nullif(
            F.concat_ws(",", F.sort_array(F.collect_set("supersedes_statement_id"))), F.lit("")
        ).alias("superseded_statement_ids"),
        F.count(F.lit(1)).alias("statements"),
        F.max("counterparty").alias("statement_counterparty"),
    )


def reported_basis(terms: DataFrame, settled_df: DataFrame, periods: DataFrame) -> DataFrame:
    """`reported` agreements: basis = what the counterparty reports on its statements; the
    rate is the term in effect at the period start."""
    rep = terms.filter(F.col("basis") == "reported")
    in_effect = rep.join(
        periods,
        (F.col("effective_from") <= F.col("period_start"))
        & (F.coalesce("effective_to", _far()) > F.col("period_start")),
        how="inner",
    ).select("period_label", "agreement_id", "direction", "rate")
    return in_effect.join(settled_df, KEY, how="left").select(
        *KEY,
        F.col("statement_basis_usd").alias("basis_usd"),
        (F.col("statement_basis_usd").cast(_AMT) * F.col("rate").cast(_R))
        .cast(MONEY)
        .alias("uncapped_expected_usd"),
    )


def usage_estimate(usage_facts: DataFrame, prices: DataFrame, terms: DataFrame) -> DataFrame:
    """`reported` agreements: the partner's resale usage (channel azure_openai) priced with the
    price sheet in effect on each usage date, counted only on days the terms are in effect
    (so the receivable estimate stops when its terms end). Tokens with no USD price in effect
    are counted, not priced."""
    rep = terms.filter(F.col("basis") == "reported").select(
        "agreement_id",
        "direction",
        F.col("effective_from").alias("_t_from"),
        F.col("effective_to").alias("_t_to"),
    )
    tokens = token_rows(usage_facts.filter(F.col("channel") == USAGE_CHANNEL))
    in_terms = tokens.join(
        F.broadcast(rep),
        (F.col("usage_date") >= F.col("_t_from"))
        & (F.col("usage_date") < F.coalesce(F.col("_t_to"), _far())),
        how="inner",
    )
    priced = with_price_sheet(in_terms, prices)
    value = F.col("tokens").cast(_TOKENS) * F.col("unit_price").cast(RATE)
    by_unit = priced.groupBy(
        quarter_label(F.col("usage_date")).alias("period_label"),
        "agreement_id",
        "direction",
        "unit_tokens",
    ).agg(
        F.sum(F.when(F.col("unit_price").isNotNull(), value)).alias("_value"),
        F.sum(F.when(F.col("unit_price").isNull(), F.col("tokens"))).alias("_unpriced"),
    )
    # Divide once per unit size, after summing exact token x price products.
    return by_unit.groupBy(*KEY).agg(
        F.coalesce(F.sum(ratio(F.col("_value"), F.col("unit_tokens"))).cast(MONEY), _zero()).alias(
            "usage_estimate_usd"
        ),
        F.coalesce(F.sum("_unpriced"), F.lit(0)).cast("long").alias("usage_unpriced_tokens"),
    )


def with_cap(df: DataFrame, caps: DataFrame) -> DataFrame:
    """Expected amounts accumulate per agreement and direction against the cap, in period order."""
    w = (
        Window.partitionBy("agreement_id", "direction")
        .orderBy("period_start")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    df = df.join(caps, ["agreement_id", "direction"], how="left")
    cum = F.sum(F.coalesce("uncapped_expected_usd", _zero())).over(w)
    before = minus(cum, F.coalesce("uncapped_expected_usd", _zero()))
    room = F.greatest(minus("cap_amount", before), _zero())
    expected = F.when(F.col("cap_amount").isNull(), F.col("uncapped_expected_usd")).otherwise(
        F.least(F.col("uncapped_expected_usd"), room)
    )
    used = F.least(cum, F.col("cap_amount"))
    return (
        df.withColumn("expected_usd", expected)
        .withColumn("cap_used_usd", F.when(F.col("cap_amount").isNotNull(), used))
        .withColumn("cap_remaining_usd", minus("cap_amount", "cap_used_usd"))
    )


def with_status(df: DataFrame, as_of: date) -> DataFrame:
    """Status by the agreement's tolerance (the larger of the absolute and the relative one)
    and its payment terms as of `as_of`; the tolerance and due date are kept on the row."""
    expected = F.abs(F.coalesce("expected_usd", _zero())).cast(_AMT)
    tol = F.greatest(
        F.col("tolerance_abs").cast(MONEY), (expected * F.col("tolerance_pct").cast(_R)).cast(MONEY)
    )
    due = F.date_add(F.col("period_end"), F.col("payment_terms_days").cast("int"))
    has_expectation = F.col("expected_usd").isNotNull()
    status = (
        F.when(
            F.col("settled_usd").isNull() & (F.lit(as_of) < F.col("payment_due_date")),
            F.lit("pending"),
        )
        .when(F.col("settled_usd").isNull(), F.lit("missing_settlement"))
        .when(~has_expectation, F.lit("unexpected_settlement"))
        .when(F.abs(F.col("variance_usd")) <= F.col("tolerance_usd"), F.lit("matched"))
        .when(F.col("variance_usd") < 0, F.lit("underpaid"))
        .otherwise(F.lit("overpaid"))
    )
    return (
        df.withColumn("tolerance_usd", tol)
        .withColumn("payment_due_date", due)
        .withColumn("status", status)
    )


def _orphan_rows(
    settled_df: DataFrame, periods: DataFrame, scaffold: DataFrame, terms: DataFrame
) -> DataFrame:
    """A settlement for a period with no terms in effect still shows, as unexpected."""
    return (
        settled_df.join(periods, "period_label", how="inner")
        .join(scaffold.select(*KEY), KEY, how="left_anti")
        .join(
            terms.groupBy("agreement_id", "direction").agg(
                F.first("counterparty").alias("counterparty"),
                F.max("payment_terms_days").alias("payment_terms_days"),
            ),
            ["agreement_id", "direction"],
            how="left",
        )
        .select(
            "period_label",
            "period_start",
            "period_end",
            "agreement_id",
            "direction",
            # An agreement no contract names still has the counterparty its statement names.
            F.coalesce("counterparty", "statement_counterparty").alias("counterparty"),
            "payment_terms_days",
        )
    )


def _term_facts(terms: DataFrame) -> DataFrame:
    """Tolerances and cap per agreement and direction."""
    return terms.groupBy("agreement_id", "direction").agg(
        F.max("tolerance_abs").alias("tolerance_abs"),
        F.max("tolerance_pct").alias("tolerance_pct"),
        F.max("cap_amount").alias("cap_amount"),
    )


def _reconciled(
    rows: DataFrame, basis: DataFrame, settled_df: DataFrame, term_facts: DataFrame, as_of: date
) -> DataFrame:
    """Each row's basis, settled amounts and terms; expected (capped), variance, rate and
    status."""
    return (
        rows.join(basis, KEY, how="left")
        .join(settled_df, KEY, how="left")
        .join(term_facts.drop("cap_amount"), ["agreement_id", "direction"], how="left")
        .transform(
            lambda d: with_cap(d, term_facts.select("agreement_id", "direction", "cap_amount"))
        )
        .withColumn("variance_usd", minus("settled_usd", F.coalesce("expected_usd", _zero())))
        .withColumn("variance_ratio", ratio(F.col("variance_usd"), F.col("expected_usd")))
        .withColumn(
            "rate",
            F.coalesce(
                ratio(F.col("uncapped_expected_usd"), F.col("basis_usd")), F.col("term_rate")
            ),
        )
        .withColumn("implied_basis_usd", ratio(F.col("settled_usd"), F.col("rate")))
        .transform(lambda d: with_status(d, as_of))
        .withColumn("is_adjustment", F.lit(False))
    )


def with_usage_estimate(df: DataFrame, estimate: DataFrame) -> DataFrame:
    """`reported` rows: the usage estimate of their basis and its difference from the
    reported basis (null on other rows)."""
    df = df.join(estimate, KEY, how="left")
    reported = F.col("basis_definition") == "reported"
    return (
        df.withColumn(
            "usage_estimate_usd",
            F.when(reported, F.coalesce("usage_estimate_usd", _zero())),
        )
        .withColumn(
            "usage_unpriced_tokens",
            F.when(reported, F.coalesce("usage_unpriced_tokens", F.lit(0))),
        )
        .withColumn(
            "usage_estimate_variance_usd",
            minus("basis_usd", "usage_estimate_usd"),
        )
        .withColumn(
            "usage_estimate_variance_ratio",
            ratio(F.col("usage_estimate_variance_usd"), F.col("usage_estimate_usd")),
        )
    )


def _with_unset_columns(df: DataFrame) -> DataFrame:
    """Null the mart columns this computation did not set (usage estimate without usage
    data; adjustment columns on regular rows)."""
    for name in (
        "usage_estimate_usd",
        "usage_estimate_variance_usd",
        "usage_estimate_variance_ratio",
        "usage_unpriced_tokens",
        "adjustment_of_period",
        "adjustment_reason",
        "adjustment_inputs",
    ):
        if name not in df.columns:
            df = df.withColumn(name, F.lit(None))
    return df


def revshare_reconciliation(
    terms: DataFrame,
    revenue_lines: DataFrame,
    settlements: DataFrame,
    periods: DataFrame,
    as_of: date,
    usage_facts: DataFrame | None = None,
    prices: DataFrame | None = None,
) -> DataFrame:
    """Grain: one row per period, agreement and direction (`is_adjustment` false here).

    With `usage_facts` and `prices`, `reported` rows carry the usage x price-sheet estimate of
    their basis and its difference from the reported basis."""
    settled_df = settled(settlements)
    basis = revenue_basis(revenue_lines, terms).unionByName(
        reported_basis(terms, settled_df, periods), allowMissingColumns=True
    )
    scaffold = agreement_periods(terms, periods)
    rows = scaffold.unionByName(
        _orphan_rows(settled_df, periods, scaffold, terms), allowMissingColumns=True
    )
    df = _reconciled(rows, basis, settled_df, _term_facts(terms), as_of)
    if usage_facts is not None and prices is not None:
        df = with_usage_estimate(df, usage_estimate(usage_facts, prices, terms))
    return select_mart(_with_unset_columns(df), "revshare_reconciliation")
