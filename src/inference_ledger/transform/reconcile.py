"""Revenue-share reconciliation, both directions, by calendar quarter.

Per (period, agreement, direction): basis -> expected share (by the term in effect on each
revenue date, capped cumulatively) -> settled (effective statements) -> variance -> status.
The `reported` direction is also cross-checked against usage of the partner's resale channel
priced with the price sheet. Late changes to closed periods become prior-period adjustment rows
in the first open period (`prior_period_adjustments`).
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger.periods import quarters_between
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
    return spark.createDataFrame(rows, schema)


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
    # A settlement for a period with no terms in effect still shows, as unexpected.
    orphan = (
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
    rows = scaffold.unionByName(orphan, allowMissingColumns=True)
    term_facts = terms.groupBy("agreement_id", "direction").agg(
        F.max("tolerance_abs").alias("tolerance_abs"),
        F.max("tolerance_pct").alias("tolerance_pct"),
        F.max("cap_amount").alias("cap_amount"),
    )
    df = (
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
    if usage_facts is not None and prices is not None:
        estimate = usage_estimate(usage_facts, prices, terms)
        df = df.join(estimate, KEY, how="left")
        reported = F.col("basis_definition") == "reported"
        df = (
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
    return select_mart(df, "revshare_reconciliation")


# ---------------------------------------------------------------- prior-period adjustments

_DELTAS = (
    "basis_usd",
    "expected_usd",
    "settled_usd",
    "implied_basis_usd",
    "statement_basis_usd",
    "usage_estimate_usd",
)
# Which inputs can move an agreement's figures, by its basis kind.
_RELEVANT_SOURCES = {
    "revenue": ["finance.revenue", "finance.settlements", "finance.contracts", "finance.fx"],
    "reported": ["finance.settlements", "finance.contracts", "finance.fx"],
}


def _signed(c: str, sign: int) -> Column:
    v = F.coalesce(F.col(c), _zero())
    return v if sign > 0 else -v


def _side(df: DataFrame, blocks: DataFrame, sign: int) -> DataFrame:
    """Rows of the corrected periods, with money signed: + recomputed, - closed."""
    return df.join(blocks, df.period_label == blocks.corrected_period, how="inner").select(
        "target_period",
        "corrected_period",
        "agreement_id",
        "direction",
        F.lit(sign).alias("sign"),
        (~F.col("is_adjustment")).alias("regular"),
        "counterparty",
        "basis_definition",
        "status",
        "rate",
        "statement_ids",
        "superseded_statement_ids",
        *[_signed(c, sign).alias(c) for c in _DELTAS],
        (F.coalesce(F.col("basis_entry_count"), F.lit(0)) * F.lit(sign)).alias("basis_entry_count"),
    )


def _signed_text(c: Column) -> Column:
    return F.concat(F.when(c >= 0, F.lit("+")).otherwise(F.lit("")), F.format_number(c, 2))


def prior_period_adjustments(
    recomputed: DataFrame,
    frozen: DataFrame,
    blocks: DataFrame,
    periods: DataFrame,
    changed_inputs: DataFrame,
) -> DataFrame:
    """Prior-period adjustment rows (mart shape, `is_adjustment` true).

    - `recomputed`: this run's regular rows, every period;
    - `frozen`: what `marts` holds for the closed periods (regular rows and the adjustment rows
      posted into them while they were open);
    - `blocks` (target_period, corrected_period): each open period the run publishes and the
      closed periods immediately before it (back to the previous open period);
    - `changed_inputs` (target_period, source, entry): input files new, changed or removed
      since the runs that published those closed periods.

    Per target, agreement and direction, money columns are the recomputed figures of the block
    minus everything `marts` holds for it, so closed rows plus adjustments always add up to the
    recomputed figures (also after a reopen, or when adjustments were themselves closed). A row
    is posted only when basis, expected or settled moved. Its status is the corrected period's
    status after the adjustment; `adjustment_reason` lists each period's change.
    """
    both = _side(recomputed.filter(~F.col("is_adjustment")), blocks, 1).unionByName(
        _side(frozen, blocks, -1)
    )
    mine = F.col("sign") > 0
    per_period = both.groupBy("target_period", "corrected_period", "agreement_id", "direction").agg(
        *[F.sum(c).alias(c) for c in _DELTAS],
        F.sum("basis_entry_count").alias("basis_entry_count"),
        F.max("counterparty").alias("counterparty"),
        F.max(F.when(mine, F.col("basis_definition"))).alias("basis_definition"),
        F.max(F.when(mine, F.col("status"))).alias("status"),
        F.max(F.when(mine, F.col("rate"))).alias("rate"),
        F.max(F.when(mine, F.col("statement_ids"))).alias("statement_ids"),
        F.max(F.when(mine, F.col("superseded_statement_ids"))).alias("superseded_statement_ids"),
        F.max(F.when(~mine & F.col("regular"), F.col("statement_ids"))).alias("closed_ids"),
        F.max(F.when(~mine & ~F.col("regular"), F.lit(True))).alias("holds_adjustment"),
    )
    moved = (F.col("basis_usd") != 0) | (F.col("expected_usd") != 0) | (F.col("settled_usd") != 0)
    text = F.concat(
        F.col("corrected_period"),
        F.lit(": basis "),
        _signed_text(F.col("basis_usd")),
        F.lit(", expected "),
        _signed_text(F.col("expected_usd")),
        F.lit(", settled "),
        _signed_text(F.col("settled_usd")),
        F.when(
            ~F.col("statement_ids").eqNullSafe(F.col("closed_ids")),
            F.concat(
                F.lit("; statements now "),
                F.coalesce(F.col("statement_ids"), F.lit("none")),
                F.lit(" (closed: "),
                F.coalesce(F.col("closed_ids"), F.lit("none")),
                F.lit(")"),
            ),
        ).otherwise(F.lit("")),
        F.when(
            F.col("holds_adjustment"),
            F.concat(
                F.lit(" (closed "),
                F.col("corrected_period"),
                F.lit(" includes an adjustment booked there for earlier periods)"),
            ),
        ).otherwise(F.lit("")),
    )
    per_period = per_period.withColumn("moved", moved).withColumn("text", text)
    latest = F.max(
        F.when(
            F.col("moved"),
            F.struct(
                "corrected_period",
                "status",
                "rate",
                "basis_definition",
            ),
        )
    )
    adj = (
        per_period.groupBy("target_period", "agreement_id", "direction")
        .agg(
            *[F.sum(c).alias(c) for c in _DELTAS],
            F.sum("basis_entry_count").alias("basis_entry_count"),
            F.max("counterparty").alias("counterparty"),
            latest.alias("latest"),
            F.max("basis_definition").alias("any_basis_definition"),
            F.concat_ws(
                ",", F.sort_array(F.collect_list(F.when(F.col("moved"), F.col("corrected_period"))))
            ).alias("adjustment_of_period"),
            F.concat_ws(
                "; ", F.sort_array(F.collect_list(F.when(F.col("moved"), F.col("text"))))
            ).alias("adjustment_reason"),
            F.nullif(
                F.concat_ws(
                    ",",
                    F.sort_array(F.collect_set(F.when(F.col("moved"), F.col("statement_ids")))),
                ),
                F.lit(""),
            ).alias("statement_ids"),
            F.nullif(
                F.concat_ws(
                    ",",
                    F.sort_array(
                        F.collect_set(F.when(F.col("moved"), F.col("superseded_statement_ids")))
                    ),
                ),
                F.lit(""),
            ).alias("superseded_statement_ids"),
        )
        .filter(
            (F.col("basis_usd") != 0) | (F.col("expected_usd") != 0) | (F.col("settled_usd") != 0)
        )
    )
    basis_def = F.coalesce(F.col("latest.basis_definition"), F.col("any_basis_definition"))
    kind = F.when(basis_def == "reported", F.lit("reported")).otherwise(F.lit("revenue"))
    inputs = (
        adj.select("target_period", "agreement_id", "direction", kind.alias("_kind"))
        .join(changed_inputs, "target_period", how="inner")
        .filter(
            ((F.col("_kind") == "revenue") & F.col("source").isin(*_RELEVANT_SOURCES["revenue"]))
            | (
                (F.col("_kind") == "reported")
                & F.col("source").isin(*_RELEVANT_SOURCES["reported"])
            )
        )
        .groupBy("target_period", "agreement_id", "direction")
        .agg(F.concat_ws("; ", F.sort_array(F.collect_set("entry"))).alias("adjustment_inputs"))
    )
    variance = minus("settled_usd", "expected_usd")
    fallback_status = (
        F.when(variance == 0, F.lit("matched"))
        .when(variance < 0, F.lit("underpaid"))
        .otherwise(F.lit("overpaid"))
    )
    reported = basis_def == "reported"
    df = (
        adj.join(inputs, ["target_period", "agreement_id", "direction"], how="left")
        .join(periods, adj.target_period == periods.period_label, how="inner")
        .withColumn("basis_definition", basis_def)
        .withColumn("rate", F.col("latest.rate"))
        .withColumn("status", F.coalesce(F.col("latest.status"), fallback_status))
        .withColumn("variance_usd", variance)
        .withColumn("variance_ratio", ratio(F.col("variance_usd"), F.col("expected_usd")))
        .withColumn(
            "basis_entry_count",
            F.when(F.col("basis_definition").startswith("revenue:"), F.col("basis_entry_count")),
        )
        .withColumn("usage_estimate_usd", F.when(reported, F.col("usage_estimate_usd")))
        .withColumn(
            "usage_estimate_variance_usd",
            F.when(reported, minus("basis_usd", "usage_estimate_usd")),
        )
        .withColumn(
            "usage_estimate_variance_ratio",
            ratio(F.col("usage_estimate_variance_usd"), F.col("usage_estimate_usd")),
        )
        .withColumn("usage_unpriced_tokens", F.lit(None))
        .withColumn("cap_used_usd", F.lit(None))
        .withColumn("cap_remaining_usd", F.lit(None))
        .withColumn("tolerance_usd", F.lit(None))
        .withColumn("payment_due_date", F.lit(None))
        .withColumn("is_adjustment", F.lit(True))
    )
    return select_mart(df, "revshare_reconciliation")
