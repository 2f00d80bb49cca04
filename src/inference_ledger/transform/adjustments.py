"""Prior-period adjustments of the revenue-share reconciliation.

Late changes to closed periods become adjustment rows (mart shape, `is_adjustment` true) in
the first open period after them: per target period, agreement and direction, the recomputed
figures of the closed block minus everything `marts` holds for it. `reconcile` computes the
regular rows and re-exports `prior_period_adjustments`.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger.transform.contract import minus, ratio, select_mart

# reconcile.MONEY, the mart's money type (reconcile imports this module, so not from there).
MONEY = T.DecimalType(38, 10)

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
_TARGET_KEY = ["target_period", "agreement_id", "direction"]


def _zero() -> Column:
    return F.lit(0).cast(MONEY)


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


def _moved() -> Column:
    """Basis, expected or settled moved (only such a change posts a row)."""
    return (F.col("basis_usd") != 0) | (F.col("expected_usd") != 0) | (F.col("settled_usd") != 0)


def per_corrected_period(both: DataFrame) -> DataFrame:
    """Both sides summed per target, corrected period, agreement and direction: the change of
    each closed period; descriptive columns are the recomputed side's, `closed_ids` and
    `holds_adjustment` what the closed side held."""
    mine = F.col("sign") > 0
    return both.groupBy("target_period", "corrected_period", "agreement_id", "direction").agg(
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


def _change_text() -> Column:
    """One corrected period's part of `adjustment_reason`."""
    return F.concat(
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


def with_change_text(per_period: DataFrame) -> DataFrame:
    return per_period.withColumn("moved", _moved()).withColumn("text", _change_text())


def _joined_ids(c: str) -> Column:
    """The distinct ids of the moved periods, comma-separated; null when there are none."""
    return F.nullif(
        F.concat_ws(",", F.sort_array(F.collect_set(F.when(F.col("moved"), F.col(c))))),
        F.lit(""),
    )


def per_target(per_period: DataFrame) -> DataFrame:
    """One row per target period, agreement and direction whose figures moved; `latest` is
    the last moved corrected period's status, rate and basis definition."""
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
    return (
        per_period.groupBy(*_TARGET_KEY)
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
            _joined_ids("statement_ids").alias("statement_ids"),
            _joined_ids("superseded_statement_ids").alias("superseded_statement_ids"),
        )
        .filter(_moved())
    )


def _basis_definition() -> Column:
    return F.coalesce(F.col("latest.basis_definition"), F.col("any_basis_definition"))


def adjustment_inputs(adj: DataFrame, changed_inputs: DataFrame) -> DataFrame:
    """The changed input files that can move each adjustment (by its agreement's basis kind),
    as `adjustment_inputs`."""
    kind = F.when(_basis_definition() == "reported", F.lit("reported")).otherwise(F.lit("revenue"))
    return (
        adj.select(*_TARGET_KEY, kind.alias("_kind"))
        .join(changed_inputs, "target_period", how="inner")
        .filter(
            ((F.col("_kind") == "revenue") & F.col("source").isin(*_RELEVANT_SOURCES["revenue"]))
            | (
                (F.col("_kind") == "reported")
                & F.col("source").isin(*_RELEVANT_SOURCES["reported"])
            )
        )
        .groupBy(*_TARGET_KEY)
        .agg(F.concat_ws("; ", F.sort_array(F.collect_set("entry"))).alias("adjustment_inputs"))
    )


def as_mart_rows(adj: DataFrame, inputs: DataFrame, periods: DataFrame) -> DataFrame:
    """Adjustments in the reconciliation's terms, posted into their target period: variance,
    status (the corrected period's, else by the variance's sign) and the usage estimate of
    `reported` agreements; what only a regular row has is null."""
    basis_def = _basis_definition()
    variance = minus("settled_usd", "expected_usd")
    fallback_status = (
        F.when(variance == 0, F.lit("matched"))
        .when(variance < 0, F.lit("underpaid"))
        .otherwise(F.lit("overpaid"))
    )
    reported = basis_def == "reported"
    return (
        adj.join(inputs, _TARGET_KEY, how="left")
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
    adj = both.transform(per_corrected_period).transform(with_change_text).transform(per_target)
    inputs = adjustment_inputs(adj, changed_inputs)
    return select_mart(as_mart_rows(adj, inputs, periods), "revshare_reconciliation")
