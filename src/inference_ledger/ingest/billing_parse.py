"""Billing intermediate strings -> typed `_p_*` columns: dates, amounts, tags, charge
category and class, SkuPriceDetails, FOCUS ContractApplied, token meters."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from inference_ledger.ingest import records as R
from inference_ledger.ingest.billing_columns import CHARGE_TYPES
from inference_ledger.ingest.billing_tokens import token_meter


def _parse_day(c: str) -> Column:
    """Azure dates are MM/DD/YYYY (sometimes ISO); FOCUS periods are ISO date-times in UTC."""
    txt = F.trim(F.col(c))
    return F.coalesce(
        F.when(txt.rlike(r"^\d{2}/\d{2}/\d{4}$"), F.to_timestamp(F.try_to_date(txt, "MM/dd/yyyy"))),
        F.when(txt.rlike(r"^\d{4}-\d{2}-\d{2}$"), F.to_timestamp(F.try_to_date(txt, "yyyy-MM-dd"))),
        F.when(
            txt.rlike(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"),
            F.try_to_timestamp(F.regexp_replace(F.regexp_replace(txt, " ", "T"), "Z$", "+00:00")),
        ),
    )


# FOCUS 1.3 ContractApplied. The spec text spells the id ContractCommitmentID, its erratum and
# generators ContractCommitmentId: both are read (the JSON parser matches keys exactly; the
# struct is then cast by position, as Spark resolves field names ignoring case). Amounts parse
# straight to decimal: a JSON number read as text would go through a double and lose digits.
_CONTRACT_APPLIED = (
    "struct<Elements:array<struct<ContractCommitmentId:string,ContractCommitmentID:string,"
    "ContractCommitmentAppliedCost:decimal(38,10)>>>"
)
_ELEMENTS = "array<struct<id:string,id_spec:string,applied_cost:decimal(38,10)>>"
_CONTRACT_APPLIED_TEXT = "struct<Elements:array<struct<ContractCommitmentAppliedCost:string>>>"


def contract_applied_elements(text: Column) -> Column:
    """array<struct<commitment_id, applied_cost>> of a ContractApplied value (null when it is
    not a ContractApplied object)."""
    parsed = F.from_json(F.trim(text), _CONTRACT_APPLIED).getField("Elements").cast(_ELEMENTS)
    return F.transform(
        parsed,
        lambda e: F.struct(
            F.coalesce(e["id"], e["id_spec"]).alias("commitment_id"),
            e["applied_cost"].alias("applied_cost"),
        ),
    )


def contract_applied_ok(text: Column) -> Column:
    """True when the value is empty or a ContractApplied object whose every element names a
    commitment and whose applied costs are decimal numbers (or null)."""
    elements = contract_applied_elements(text)
    as_text = F.from_json(F.trim(text), _CONTRACT_APPLIED_TEXT).getField("Elements")

    def costs(array: Column, key: str) -> Column:
        return F.size(F.filter(array, lambda e: e[key].isNotNull()))

    named = ~F.exists(elements, lambda e: e["commitment_id"].isNull())
    same = costs(elements, "applied_cost") == costs(as_text, "ContractCommitmentAppliedCost")
    return F.when(text.isNull() | (F.trim(text) == ""), F.lit(True)).otherwise(
        F.coalesce(elements.isNotNull() & named & same, F.lit(False))
    )


def _parsed_tags(c: str) -> Column:
    """Tags come as JSON or as Azure `"k": "v","k2": "v2"` fragments without braces."""
    txt = F.trim(F.col(c))
    as_json = F.when(txt.startswith("{"), txt).otherwise(F.concat(F.lit("{"), txt, F.lit("}")))
    return F.from_json(as_json, "map<string,string>")


def with_declared_version(rows: DataFrame) -> DataFrame:
    """A FOCUS run whose manifest states its data version (`1.2-preview`, `1.3`) is recorded
    as that version: the columns only bound it from below. Without the run facts' nullable
    `data_version` column (or a value) the version read from the columns stays."""
    if "data_version" not in rows.columns:
        return rows
    declared = F.regexp_extract(F.trim(F.col("data_version")), r"^(\d+\.\d+)", 1)
    return rows.withColumn(
        "source_format",
        F.when(
            F.col("source_format").startswith("focus") & (F.coalesce(declared, F.lit("")) != ""),
            F.concat(F.lit("focus-"), declared),
        ).otherwise(F.col("source_format")),
    )


def with_billing_parsed(rows: DataFrame) -> DataFrame:
    """Typed `_p_*` columns from the intermediate strings."""
    rows = rows.transform(with_declared_version)
    tags_map = F.col("_p_tags_map")
    tags_json = F.when(R.is_blank("tags"), F.lit(None)).otherwise(F.to_json(tags_map))
    azure_cat = F.create_map(*[F.lit(x) for k, (cat, _) in CHARGE_TYPES.items() for x in (k, cat)])
    azure_cls = F.create_map(
        *[F.lit(x) for k, (_, cls) in CHARGE_TYPES.items() if cls for x in (k, cls)]
    )
    is_focus = F.col("source_format").startswith("focus")
    # The charge date is parsed once: an Azure line's end is the day after `_p_start`.
    end = F.when(is_focus, _parse_day("charge_end")).otherwise(
        F.col("_p_start") + F.expr("INTERVAL 1 DAY")
    )
    category = F.when(is_focus, F.trim("charge_category")).otherwise(
        azure_cat[F.trim("charge_type")]
    )
    charge_class = F.when(is_focus, F.nullif(F.trim("charge_class"), F.lit(""))).otherwise(
        azure_cls[F.trim("charge_type")]
    )
    # Each value parsed once, into a column (not an expression repeated in each use). Two
    # projections, not a withColumn each: every withColumn analyses the whole plan again (~9 ms
    # a call on a small ingest). The second reads the first's columns.
    parsed = rows.withColumns(
        {
            "_p_tags_map": _parsed_tags("tags"),
            "_p_spd": F.from_json(F.trim(F.col("sku_price_details")), "map<string,string>"),
            "_p_contract_applied_ok": contract_applied_ok(F.col("contract_applied")),
            "_p_start": _parse_day("charge_start"),
            "_p_bp_start": F.when(is_focus, _parse_day("billing_period_start")),
            "_p_bp_end": F.when(is_focus, _parse_day("billing_period_end")),
            "_p_cost": R.parse_decimal("billed_cost"),
            "_p_qty": F.when(R.is_blank("quantity"), F.lit(None)).otherwise(
                R.parse_decimal("quantity")
            ),
            "_p_usd": R.parse_decimal("usd_cost"),
            "_p_category": category,
            "_p_class": charge_class,
        }
    )
    return parsed.withColumns(
        {
            "_p_end": end,
            "_p_meter": token_meter(is_focus),
            "_p_effective": F.when(is_focus, R.parse_decimal("effective_cost")).otherwise(
                F.col("_p_cost")
            ),
            "_p_tags": tags_json,
            "_p_tags_ok": R.is_blank("tags") | tags_map.isNotNull(),
        }
    )
