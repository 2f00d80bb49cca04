"""The checks a billing line must pass to be loaded, and the status, reason and field each
line gets: its run's verdict first (rejected, superseded), then the first check it fails."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from inference_ledger.ingest import records as R
from inference_ledger.ingest.billing_columns import FOCUS_CATEGORIES

Check = tuple[Column, str, str]  # (fails, field, reason)


def _required_field_checks() -> list[Check]:
    """A row Spark could split into fields, with the fields every dialect requires."""
    return [
        (F.col(R.CORRUPT).isNotNull(), "", "malformed CSV row (wrong number of fields or quoting)"),
        (R.is_blank("account_id"), "BillingAccountId", "required field BillingAccountId is empty"),
        (
            R.is_blank("service_name"),
            "ServiceName",
            "required field ServiceName / MeterCategory is empty",
        ),
        (R.is_blank("currency"), "BillingCurrency", "required field BillingCurrency is empty"),
        (
            R.is_blank("billed_cost"),
            "BilledCost",
            "required field BilledCost / CostInBillingCurrency is empty",
        ),
    ]


def _period_checks(is_focus: Column) -> list[Check]:
    """Charge and billing periods: parseable, ordered, and of the export's billing period."""
    return [
        (
            F.col("_p_start").isNull(),
            "ChargePeriodStart",
            "charge date is not a date (MM/DD/YYYY, YYYY-MM-DD or ISO date-time)",
        ),
        (
            is_focus & F.col("_p_end").isNull(),
            "ChargePeriodEnd",
            "ChargePeriodEnd is not an ISO date-time",
        ),
        (
            F.col("_p_end") <= F.col("_p_start"),
            "ChargePeriodEnd",
            "charge period end is not after its start",
        ),
        (
            # An Azure line is one day's charge (or a purchase on that day) of its export's
            # billing period. A FOCUS charge period may lie anywhere (a 1-year purchase, a
            # correction of an earlier month): its row's billing period must be the export's.
            ~is_focus
            & (
                (F.to_date("_p_start") < F.col("period_start"))
                | (F.to_date("_p_start") >= F.col("period_end"))
            ),
            "ChargePeriodStart",
            "charge date is outside the export's billing period",
        ),
        (
            is_focus & (F.col("_p_bp_start").isNull() | F.col("_p_bp_end").isNull()),
            "BillingPeriodStart",
            "BillingPeriodStart / BillingPeriodEnd is not an ISO date-time",
        ),
        (
            is_focus
            & (
                (F.to_date("_p_bp_start") != F.col("period_start"))
                | (F.to_date("_p_bp_end") != F.col("period_end"))
            ),
            "BillingPeriodStart",
            "the row's billing period is not the export's billing period",
        ),
    ]


def _amount_checks(is_focus: Column) -> list[Check]:
    """Costs, quantity and currency: decimal numbers, a usage quantity never negative, an ISO
    currency code."""
    return [
        (
            F.col("_p_cost").isNull(),
            "BilledCost",
            "BilledCost / CostInBillingCurrency is not a decimal number",
        ),
        (
            is_focus & F.col("_p_effective").isNull(),
            "EffectiveCost",
            "EffectiveCost is not a decimal number",
        ),
        (
            ~R.is_blank("quantity") & F.col("_p_qty").isNull(),
            "ConsumedQuantity",
            "quantity is not a decimal number",
        ),
        (
            # Usage is consumed, never given back: a negative amount is a correction or credit.
            (F.col("_p_category") == "Usage") & F.col("_p_class").isNull() & (F.col("_p_qty") < 0),
            "ConsumedQuantity",
            "negative quantity on a usage charge (only a correction may be negative)",
        ),
        (
            ~R.is_blank("usd_cost") & F.col("_p_usd").isNull(),
            "costInUsd",
            "costInUsd is not a decimal number",
        ),
        (
            ~F.trim(F.col("currency")).rlike("^[A-Z]{3}$"),
            "BillingCurrency",
            "not an ISO currency code",
        ),
    ]


def _charge_kind_checks() -> list[Check]:
    """A FOCUS ChargeCategory, and a ChargeClass that is empty or a correction."""
    return [
        (
            F.col("_p_category").isNull() | ~F.col("_p_category").isin(*FOCUS_CATEGORIES),
            "ChargeCategory",
            "unknown ChargeType / ChargeCategory",
        ),
        (
            F.col("_p_class").isNotNull() & (F.col("_p_class") != "Correction"),
            "ChargeClass",
            "ChargeClass must be empty or Correction",
        ),
    ]


def _structured_field_checks() -> list[Check]:
    """Tags, SkuPriceDetails and ContractApplied: text that parses as what it claims to be."""
    return [
        (~F.col("_p_tags_ok"), "Tags", "Tags is neither JSON nor key/value fragments"),
        (
            ~R.is_blank("sku_price_details") & F.col("_p_spd").isNull(),
            "SkuPriceDetails",
            "SkuPriceDetails is not a JSON object",
        ),
        (
            ~F.col("_p_contract_applied_ok"),
            "ContractApplied",
            "ContractApplied is not a FOCUS ContractApplied object (an Elements array, each"
            " element with a ContractCommitmentId and a decimal ContractCommitmentAppliedCost)",
        ),
    ]


def _line_checks() -> list[Check]:
    """Every check of a line, in the order a failure is reported (the first one names it)."""
    is_focus = F.col("source_format").startswith("focus")
    return [
        *_required_field_checks(),
        *_period_checks(is_focus),
        *_amount_checks(is_focus),
        *_charge_kind_checks(),
        *_structured_field_checks(),
    ]


def with_billing_status(rows: DataFrame) -> DataFrame:
    """Rejected or superseded run, else the first failed check, else loaded."""
    rows = rows.withColumn("_check", R.first_failed_index(_line_checks()))
    reason, field = R.first_failure_by_index(_line_checks(), F.col("_check"))
    rejected = F.col("rejected_reason").isNotNull()
    superseded = ~rejected & ~F.col("is_current_run")
    status = (
        F.when(rejected, F.lit(R.QUARANTINED))
        .when(superseded, F.lit(R.SUPERSEDED))
        .when(F.col("_check").isNotNull(), F.lit(R.QUARANTINED))
        .otherwise(F.lit(R.LOADED))
    )
    why = (
        F.when(rejected, F.concat(F.lit("export run rejected: "), F.col("rejected_reason")))
        .when(
            superseded & (F.col("dataset") != F.col("current_dataset")),
            F.concat(
                F.lit("the scope's "),
                F.col("current_dataset"),
                F.lit(" export of the month is read instead of this "),
                F.col("dataset"),
                F.lit(" export"),
            ),
        )
        .when(superseded, F.lit("a newer run of the same scope and month restates it"))
        .otherwise(reason)
    )
    return rows.select(
        "*",
        status.alias("status"),
        why.alias("reason"),
        F.when(rejected | superseded, F.lit(None)).otherwise(field).alias("field"),
    ).drop("_check")


def with_failed_months(rows: DataFrame, failed: dict[str, str]) -> DataFrame:
    """Lines of a billing month that cannot load (a missing FX rate) are quarantined, naming
    why (`failed`: month -> reason); the line's own verdict stands where it is not loaded."""
    if not failed:
        return rows
    why = F.create_map(*[F.lit(x) for kv in sorted(failed.items()) for x in kv])
    hit = (F.col("status") == R.LOADED) & F.col("billing_month").isin(sorted(failed))
    return rows.withColumns(
        {
            "reason": F.when(
                hit, F.concat(F.lit("billing month not loaded: "), why[F.col("billing_month")])
            ).otherwise(F.col("reason")),
            "status": F.when(hit, F.lit(R.QUARANTINED)).otherwise(F.col("status")),
        }
    )
