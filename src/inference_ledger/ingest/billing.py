"""Billing files of every dialect -> canonical FOCUS-aligned billing lines.

Dialects are recognised from each file's header by what it carries, not by one column name:
- `azure-ea` / `azure-mca`: Azure cost details. Both share one alias table (EA writes
  PascalCase, MCA camelCase, names are matched ignoring case); the money column is
  `CostInBillingCurrency`, or `Cost` / `PreTaxCost` in older dataset versions. A file is MCA
  when most of its matched names are camelCase.
- `focus-1.0` ... `focus-1.4`: FOCUS. The version is the newest whose introduced columns the
  header carries (a lower bound: a newer file may use none of its version's new columns), or
  the export manifest's `dataVersion` where the run has one (the producer's own statement).
Each is mapped onto one set of intermediate string columns, then typed and checked the same
way. Actual cost: CostInBillingCurrency -> BilledCost (and EffectiveCost, since an actual-cost
export carries no amortisation). `x_` columns of FOCUS are kept as JSON in `x_columns`;
allocation, contract, commitment and pricing columns that have no lake column are kept as JSON
in `lineage`. A header no dialect accepts is an InputError naming the file, the closest
dialect and the required columns it lacks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger import contracts
from inference_ledger.ingest import records as R
from inference_ledger.ingest.exports import (
    ExportRun,
    runs_frame,
    with_current_run,
    with_row_count_check,
)
from inference_ledger.workload import WorkloadRules, with_workload

# Intermediate column -> accepted source names, one table per dialect family (matched ignoring
# case; the first present wins). Azure names across dataset versions: Microsoft's cost-details
# field reference (EA 2024-08-01, MCA 2023-12-01-preview) and older exports (`Cost`,
# `PreTaxCost`, `UsageDate`, `SubscriptionGuid`, `Currency`).
AZURE_ALIASES: dict[str, list[str]] = {
    "account_id": ["BillingAccountId"],
    "account_name": ["BillingAccountName"],
    "sub_account_id": ["SubscriptionId", "SubscriptionGuid"],
    "resource_group": ["ResourceGroup", "ResourceGroupName"],
    "charge_start": ["Date", "UsageDate", "UsageDateTime"],
    "charge_end": [],
    "billing_period_start": [],
    "billing_period_end": [],
    "service_name": ["MeterCategory"],
    "service_category": [],
    "service_subcategory": [],
    "sku_id": ["MeterId"],
    "sku_description": ["MeterName"],
    "meter_name": ["MeterName"],
    "sku_price_details": [],
    "region": ["ResourceLocation", "MeterRegion"],
    "unit": ["UnitOfMeasure"],
    "quantity": ["Quantity", "UsageQuantity"],
    "billed_cost": ["CostInBillingCurrency", "Cost", "PreTaxCost"],
    "effective_cost": [],
    "currency": ["BillingCurrencyCode", "BillingCurrency", "Currency"],
    "usd_cost": ["CostInUsd"],
    "resource_id": ["ResourceId", "InstanceId"],
    "tags": ["Tags"],
    "charge_type": ["ChargeType"],
    "charge_category": [],
    "charge_class": [],
    "provider_name": [],
    "provider_name_legacy": [],
    "host_provider": [],
    "invoice_issuer": [],
    "contract_applied": [],
}
FOCUS_ALIASES: dict[str, list[str]] = {
    "account_id": ["BillingAccountId"],
    "account_name": ["BillingAccountName"],
    "sub_account_id": ["SubAccountId"],
    "resource_group": ["x_ResourceGroupName"],
    "charge_start": ["ChargePeriodStart"],
    "charge_end": ["ChargePeriodEnd"],
    "billing_period_start": ["BillingPeriodStart"],
    "billing_period_end": ["BillingPeriodEnd"],
    "service_name": ["ServiceName"],
    "service_category": ["ServiceCategory"],
    "service_subcategory": ["ServiceSubcategory"],
    "sku_id": ["SkuId"],
    "sku_description": ["x_SkuDescription", "SkuMeter", "ChargeDescription"],
    # Microsoft's FOCUS exports name the Azure meter (`gpt 4.1 Inp regnl Tokens`) in SkuMeter
    # (1.0r2 and later) or x_SkuMeterName (1.0): read like a cost-details MeterName.
    "meter_name": ["SkuMeter", "x_SkuMeterName"],
    "sku_price_details": ["SkuPriceDetails"],
    "region": ["RegionId", "RegionName", "Region"],
    # 1.0-preview (Microsoft's FocusCost 1.0-preview(v1)) wrote UsageUnit / UsageQuantity.
    "unit": ["ConsumedUnit", "UsageUnit"],
    "quantity": ["ConsumedQuantity", "UsageQuantity"],
    "billed_cost": ["BilledCost"],
    "effective_cost": ["EffectiveCost"],
    "currency": ["BillingCurrency"],
    "usd_cost": [],
    "resource_id": ["ResourceId"],
    "tags": ["Tags"],
    "charge_type": [],
    "charge_category": ["ChargeCategory"],
    "charge_class": ["ChargeClass"],
    # 1.3 replaced ProviderName (deprecated, gone in 1.4) by ServiceProviderName.
    "provider_name": ["ServiceProviderName"],
    "provider_name_legacy": ["ProviderName"],
    "host_provider": ["HostProviderName"],
    "invoice_issuer": ["InvoiceIssuerName"],
    # 1.3: which contract commitments the charge consumed (kept verbatim in `lineage`; checked
    # here, burnt down by transform/commitment.py).
    "contract_applied": ["ContractApplied"],
}
ALIASES = {"azure": AZURE_ALIASES, "focus": FOCUS_ALIASES}
# Both families map to the same intermediate columns, in the same order: one union.
assert list(FOCUS_ALIASES) == list(AZURE_ALIASES)
# Required intermediates per family; a tuple is satisfied by any one of its members.
REQUIRED: dict[str, list[str | tuple[str, ...]]] = {
    "azure": ["account_id", "charge_start", "service_name", "sku_description", "unit",
              "quantity", "billed_cost", "currency", "charge_type"],
    "focus": ["billed_cost", "effective_cost", "account_id", "currency", "billing_period_start",
              "billing_period_end", "charge_category", "charge_start", "charge_end",
              "service_name", ("provider_name", "provider_name_legacy")],
}  # fmt: skip
# Columns each FOCUS version introduced (FOCUS changelog and "Introduced (version)" of each
# column), newest first; a header with none of them is 1.0.
FOCUS_VERSION_COLUMNS: list[tuple[str, tuple[str, ...]]] = [
    ("1.4", ("InvoiceDetailId", "CommitmentProgramEligibility")),
    ("1.3", ("ServiceProviderName", "HostProviderName", "AllocatedMethodId",
             "AllocatedMethodDetails", "AllocatedResourceId", "AllocatedResourceName",
             "AllocatedTags", "ContractApplied", "ContractId")),
    ("1.2", ("BillingAccountType", "SubAccountType", "InvoiceId", "PricingCurrency",
             "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
             "PricingCurrencyListUnitPrice")),
    ("1.1", ("CapacityReservationId", "CapacityReservationStatus", "CommitmentDiscountQuantity",
             "CommitmentDiscountUnit", "ServiceSubcategory", "SkuMeter", "SkuPriceDetails")),
]  # fmt: skip
# Source columns kept verbatim (as text) in `lineage` when present and not empty.
LINEAGE: dict[str, list[str]] = {
    "azure": ["BillingPeriodStartDate", "BillingPeriodEndDate", "InvoiceId", "PreviousInvoiceId",
              "ReservationId", "ReservationName", "ProductOrderId", "ProductOrderName",
              "BenefitId", "BenefitName", "Term", "Frequency", "PricingModel",
              "CostAllocationRuleName", "EffectivePrice", "UnitPrice", "PayGPrice",
              "PaygCostInBillingCurrency", "PaygCostInUsd", "CostInPricingCurrency",
              "ExchangeRatePricingToBilling"],
    "focus": ["BillingPeriodStart", "BillingPeriodEnd", "InvoiceId", "InvoiceDetailId",
              "SkuPriceId", "SkuPriceDetails", "SkuMeter", "PricingCategory", "ChargeFrequency",
              "ListCost", "ContractedCost", "CommitmentDiscountId", "CommitmentDiscountName",
              "CommitmentDiscountType", "CommitmentDiscountCategory", "CommitmentDiscountStatus",
              "CommitmentDiscountQuantity", "CommitmentDiscountUnit", "CapacityReservationId",
              "CapacityReservationStatus", "ContractApplied", "ContractId",
              "AllocatedMethodId", "AllocatedMethodDetails", "AllocatedResourceId",
              "AllocatedResourceName", "AllocatedTags", "CommitmentProgramEligibility",
              "PublisherName"],
}  # fmt: skip

# Azure ChargeType -> FOCUS (ChargeCategory, ChargeClass). Refunds are corrections.
CHARGE_TYPES = {
    "Usage": ("Usage", None),
    "UnusedReservation": ("Usage", None),
    "UnusedSavingsPlan": ("Usage", None),
    "Purchase": ("Purchase", None),
    "Refund": ("Purchase", "Correction"),
    "Tax": ("Tax", None),
    "Adjustment": ("Adjustment", None),
    "RoundingAdjustment": ("Adjustment", None),
    "Credit": ("Credit", None),
}
FOCUS_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
# MeterCategory -> FOCUS ServiceCategory (FOCUS files carry their own).
SERVICE_CATEGORIES = {
    "Virtual Machines": "Compute",
    "Azure OpenAI": "AI and Machine Learning",
    "Foundry Models": "AI and Machine Learning",
    "Cognitive Services": "AI and Machine Learning",
    "Foundry Tools": "AI and Machine Learning",
    "Azure AI Services": "AI and Machine Learning",
    "Azure OpenAI Service": "AI and Machine Learning",
    "Machine Learning": "AI and Machine Learning",
    "Storage": "Storage",
    "Bandwidth": "Networking",
    "Virtual Network": "Networking",
}
# Microsoft is provider, host and invoice issuer of everything in an Azure cost-details file
# (Marketplace charges included: Microsoft invoices them).
PROVIDERS = {"azure-ea": "Microsoft", "azure-mca": "Microsoft"}
# Azure OpenAI / Foundry Models token meters, lowercased: `<model> [shortco|longco] [batch|pp|
# dev ft|ft] [cached|cchd|cd] <inp|inpt|input|outp|outpt|opt|output> [deployment] [1K|1M]
# [Tokens]`, words separated by spaces or hyphens, some run together (`gpt-4o-0513 Inp regnl 1K
# Tokens`, `GPT 5 cchd Inpt Glbl 1M Tokens`, `gpt-4o-mini-0718-Outp-regnl`, `5.4 cd inp Gl`,
# `gpt 4o mini0718 BatchOutp DataZone Tokens`, `5.5 ShortCo inp Gl 1M Tokens`,
# `Phi-4-reasoning-Output`). One regexp_replace turns a match into
# `model<SEP>cache word<SEP>direction`.
METER_SEP = "\u0001"
METER_PATTERN = (
    r"^(.+?)[\s-]+(?:(?:shortco|longco)[\s-]+)?(?:(?:batch|pp|dev[\s-]+ft|ft)[\s-]*)?"
    r"(?:(cached|cchd|cd|cache|cach)[\s-]+)?"
    r"(inp|inpt|input|outp|outpt|opt|output)(?:[\s-].*)?$"
)
# A cache write / cache read named anywhere in a meter (`Cache Write Input Tokens`,
# `gpt 4o 1120 cached Inp regnl Tokens`): the cache action when the bill states none.
CACHE_WRITE_PATTERN = r"(^|[\s-])(cache|cached|cach|cchd)[\s-]*(write|writes|creation)([\s-]|$)"
CACHE_READ_PATTERN = r"(^|[\s-])(cached|cchd|cd|cach|cache[\s-]*read|cache[\s-]*hit)([\s-]|$)"
# Units of measure Azure writes on token meters besides `... Tokens`: a block of tokens
# (`1K`, `1M`, `10K`), as the price sheet and cost details give them.
TOKEN_BLOCK_UNIT = r"^\d+\s*[km]?$"
BILLING_COLUMNS = [c.name for c in contracts.columns("lake", "billing_lines")]


@dataclass(frozen=True)
class Dialect:
    name: str  # azure-ea | azure-mca | focus-1.0 ... focus-1.4
    columns: dict[str, str | None]  # intermediate -> the file's column (None: absent)

    @property
    def family(self) -> str:
        return "focus" if self.name.startswith("focus") else "azure"


def _resolve(aliases: dict[str, list[str]], header: tuple[str, ...]) -> dict[str, str | None]:
    by_lower = {h.lower(): h for h in header}
    return {
        target: next((by_lower[c.lower()] for c in names if c.lower() in by_lower), None)
        for target, names in aliases.items()
    }


def _lacking(family: str, cmap: dict[str, str | None]) -> list[str]:
    """The required columns the file lacks, each named by its accepted source names."""
    out = []
    for need in REQUIRED[family]:
        group = need if isinstance(need, tuple) else (need,)
        if all(cmap[g] is None for g in group):
            out.append(" or ".join(sorted({n for g in group for n in ALIASES[family][g]})))
    return out


def _version(family: str, header: tuple[str, ...], cmap: dict[str, str | None]) -> str:
    if family == "focus":
        names = {h.lower() for h in header}
        found = (v for v, cols in FOCUS_VERSION_COLUMNS if any(c.lower() in names for c in cols))
        return f"focus-{next(found, '1.0')}"
    matched = [c for c in cmap.values() if c]
    camel = sum(1 for c in matched if c[:1].islower())
    return "azure-mca" if 2 * camel > len(matched) else "azure-ea"


def resolve_dialect(header: tuple[str, ...], path: str) -> Dialect:
    """The dialect whose required columns the header carries, else an InputError naming the
    file, the closest dialect and what it lacks."""
    tried = []
    for family, aliases in ALIASES.items():
        cmap = _resolve(aliases, header)
        lacking = _lacking(family, cmap)
        name = _version(family, header, cmap)
        if not lacking:
            return Dialect(name, cmap)
        share = 1 - len(lacking) / len(REQUIRED[family])
        tried.append((share, name, lacking, bool(cmap["billed_cost"] and cmap["charge_start"])))
    share, name, lacking, recognised = max(tried, key=lambda t: (t[3], t[0]))
    if recognised:  # its money and date columns are there: that dialect, incomplete
        raise R.InputError(
            f"{path}: {name} file is missing required column(s) {', '.join(lacking)}"
        )
    raise R.InputError(
        f"{path}: not a known billing export (header: {', '.join(header[:6])}, ...); the "
        f"closest dialect is {name}, which needs column(s) {', '.join(lacking)}"
    )


def detect_dialect(header: tuple[str, ...]) -> str | None:
    try:
        return resolve_dialect(header, "").name
    except R.InputError:
        return None


def _x_columns(header: tuple[str, ...]) -> Column:
    xs = [h for h in header if h.startswith("x_")]
    if not xs:
        return F.lit(None).cast("string")
    return F.to_json(F.create_map(*[e for h in xs for e in (F.lit(h), F.col(f"`{h}`"))]))


def _lineage(header: tuple[str, ...], family: str) -> Column:
    """The family's lineage columns present in the file, as a JSON object of their non-empty
    text values (null when none has a value)."""
    by_lower = {h.lower(): h for h in header}
    cols = [by_lower[c.lower()] for c in LINEAGE[family] if c.lower() in by_lower]
    if not cols:
        return F.lit(None).cast("string")
    pairs = F.create_map(*[e for c in cols for e in (F.lit(c), F.col(f"`{c}`").cast("string"))])
    kept = F.map_filter(pairs, lambda _, v: v.isNotNull() & (F.trim(v) != ""))
    return F.nullif(F.to_json(kept), F.lit("{}"))


def _select(
    df: DataFrame, header: tuple[str, ...], dialect: Dialect, path_col: Column, line: Column
) -> DataFrame:
    return df.select(
        *[
            (F.col(f"`{src}`").cast("string") if src else F.lit(None).cast("string")).alias(name)
            for name, src in dialect.columns.items()
        ],
        _x_columns(header).alias("x_columns"),
        _lineage(header, dialect.family).alias("_lineage"),
        F.lit(dialect.name).alias("source_format"),
        path_col.alias("source_file"),
        line.alias("line_number"),
        F.col(R.CORRUPT)
        if R.CORRUPT in df.columns
        else F.lit(None).cast("string").alias(R.CORRUPT),
        F.to_json(F.struct(*[F.col(f"`{h}`") for h in header])).alias("raw_record"),
    )


def _parquet_header(spark: SparkSession, path: Path) -> tuple[tuple[str, ...], T.StructType]:
    schema = spark.read.parquet(str(path)).schema
    return tuple(f.name for f in schema.fields), schema


def read_billing_files(spark: SparkSession, files: list[Path]) -> DataFrame | None:
    """All billing blobs as intermediate string columns + dialect, file and line number.

    CSV line numbers count the header as line 1 (valid while a file is read as one split:
    files over 128 MiB are split by Spark and get no line number). Parquet rows are numbered
    from 1. A file whose header matches no dialect is an error naming it, the closest dialect
    and the required columns it lacks.
    """
    csv_groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    frames = []
    for path in files:
        if path.name.endswith(".parquet"):
            header, schema = _parquet_header(spark, path)
            dialect = resolve_dialect(header, str(path))
            # Money columns stored as floating point are fixed at 10 places, never kept as floats.
            df = spark.read.parquet(str(path))
            for f in schema.fields:
                if isinstance(f.dataType, T.DoubleType | T.FloatType):
                    # NaN, infinity, 1e300 have no decimal(38,10) value: kept as their text, so
                    # the row is quarantined as "not a decimal number" rather than "empty".
                    c = F.col(f"`{f.name}`")
                    exact = c.try_cast(T.DecimalType(38, 10)).cast("string")
                    df = df.withColumn(f.name, F.coalesce(exact, c.cast("string")))
            frames.append(
                _select(df, header, dialect, R.file_path_col(), F.col("_metadata.row_index") + 1)
            )
            continue
        header = R.read_header(path)
        if not header:
            continue  # an empty file has no rows; it is still checksummed and counted
        resolve_dialect(header, str(path))
        csv_groups[header].append(str(path))
    for header, paths in sorted(csv_groups.items()):
        df = R.read_csv_strings(spark, paths, header).withColumn(
            "_row_id", F.monotonically_increasing_id()
        )
        dialect = resolve_dialect(header, paths[0])
        frames.append(
            _select(df, header, dialect, R.file_path_col(), F.col("_row_id")).withColumn(
                "_csv", F.lit(True)
            )
        )
    if not frames:
        return None
    frames = [f if "_csv" in f.columns else f.withColumn("_csv", F.lit(False)) for f in frames]
    return R.union_all(frames)


def with_line_numbers(rows: DataFrame) -> DataFrame:
    """CSV rows carry Spark's row id; a file's first row id is line 2 (after the header)."""
    first = (
        rows.filter(F.col("_csv"))
        .groupBy("source_file")
        .agg(F.min("line_number").alias("_first_id"))
    )
    return (
        rows.join(F.broadcast(first), "source_file", how="left")
        .withColumn("_offset", F.col("line_number") - F.col("_first_id"))
        .withColumn(
            "line_number",
            # A file split across partitions jumps by 2^33 ids: no reliable line number then.
            F.when(~F.col("_csv"), F.col("line_number")).when(
                F.col("_offset") < (1 << 33), F.col("_offset") + 2
            ),
        )
        .drop("_offset")
        .drop("_first_id", "_csv")
    )


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


def _service_category() -> Column:
    """MeterCategory -> FOCUS ServiceCategory (SERVICE_CATEGORIES) as a map column."""
    return F.create_map(*[F.lit(x) for kv in SERVICE_CATEGORIES.items() for x in kv])


def _token_meter(is_focus: Column) -> Column:
    """A token meter's name split into [model, cache word, direction] (one regex pass); a
    one-element array for a meter that names no direction; null for other lines. A line is
    a token meter when its unit or meter name says tokens, or when an AI service's meter
    names a direction in a block unit (`gpt 4.1 Inp regnl` in `1K`). FOCUS lines that carry
    a ModelId in SkuPriceDetails are described by it, not by their meter name."""
    meter = F.lower(F.trim(F.col("meter_name")))
    unit = F.lower(F.trim(F.coalesce(F.col("unit"), F.lit(""))))
    split = F.split(
        F.regexp_replace(meter, METER_PATTERN, f"$1{METER_SEP}$2{METER_SEP}$3"), METER_SEP
    )
    ai_service = (
        _service_category()[F.trim(F.col("service_name"))] == "AI and Machine Learning"
    ) | (F.trim(F.col("service_category")) == "AI and Machine Learning")
    tokens = (
        unit.contains("token")
        | F.coalesce(meter, F.lit("")).endswith("tokens")
        | (ai_service & unit.rlike(TOKEN_BLOCK_UNIT) & (F.size(split) == 3))
    )
    has_model = F.nullif(F.trim(F.col("_p_spd")["ModelId"]), F.lit("")).isNotNull()
    return F.when(tokens & ~(is_focus & has_model), split)


def with_billing_parsed(rows: DataFrame) -> DataFrame:
    """Typed `_p_*` columns from the intermediate strings."""
    rows = rows.transform(with_declared_version)
    # Parsed once (a column, not an expression repeated in each use).
    rows = (
        rows.withColumn("_p_tags_map", _parsed_tags("tags"))
        .withColumn("_p_spd", F.from_json(F.trim(F.col("sku_price_details")), "map<string,string>"))
        .withColumn("_p_meter", _token_meter(F.col("source_format").startswith("focus")))
        .withColumn("_p_contract_applied_ok", contract_applied_ok(F.col("contract_applied")))
    )
    tags_map = F.col("_p_tags_map")
    tags_json = F.when(R.is_blank("tags"), F.lit(None)).otherwise(F.to_json(tags_map))
    azure_cat = F.create_map(*[F.lit(x) for k, (cat, _) in CHARGE_TYPES.items() for x in (k, cat)])
    azure_cls = F.create_map(
        *[F.lit(x) for k, (_, cls) in CHARGE_TYPES.items() if cls for x in (k, cls)]
    )
    is_focus = F.col("source_format").startswith("focus")
    start = _parse_day("charge_start")
    end = F.when(is_focus, _parse_day("charge_end")).otherwise(start + F.expr("INTERVAL 1 DAY"))
    category = F.when(is_focus, F.trim("charge_category")).otherwise(
        azure_cat[F.trim("charge_type")]
    )
    charge_class = F.when(is_focus, F.nullif(F.trim("charge_class"), F.lit(""))).otherwise(
        azure_cls[F.trim("charge_type")]
    )
    billed = R.parse_decimal("billed_cost")
    return (
        rows.withColumn("_p_start", start)
        .withColumn("_p_end", end)
        .withColumn("_p_bp_start", F.when(is_focus, _parse_day("billing_period_start")))
        .withColumn("_p_bp_end", F.when(is_focus, _parse_day("billing_period_end")))
        .withColumn("_p_cost", billed)
        .withColumn(
            "_p_effective", F.when(is_focus, R.parse_decimal("effective_cost")).otherwise(billed)
        )
        .withColumn(
            "_p_qty",
            F.when(R.is_blank("quantity"), F.lit(None)).otherwise(R.parse_decimal("quantity")),
        )
        .withColumn("_p_usd", R.parse_decimal("usd_cost"))
        .withColumn("_p_tags", tags_json)
        .withColumn("_p_tags_ok", R.is_blank("tags") | tags_map.isNotNull())
        .withColumn("_p_category", category)
        .withColumn("_p_class", charge_class)
    )


def with_billing_status(rows: DataFrame) -> DataFrame:
    """Rejected or superseded run, else the first failed check, else loaded."""
    is_focus = F.col("source_format").startswith("focus")
    checks = [
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
    reason, field = R.first_failure(checks)
    rejected = F.col("rejected_reason").isNotNull()
    superseded = ~rejected & ~F.col("is_current_run")
    status = (
        F.when(rejected, F.lit(R.QUARANTINED))
        .when(superseded, F.lit(R.SUPERSEDED))
        .when(reason.isNotNull(), F.lit(R.QUARANTINED))
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
    return (
        rows.withColumn("status", status)
        .withColumn("reason", why)
        .withColumn(
            "field",
            F.when(rejected | superseded, F.lit(None)).otherwise(F.nullif(field, F.lit(""))),
        )
    )


def _accounting_day() -> Column:
    """The day a line is accounted on (the marts group by it): the charge's first day when it
    lies inside the export's billing period, else the billing period's first day. FOCUS bills
    BilledCost in the billing period it was invoiced, whatever the charge period: an upfront
    1-year purchase invoiced in February counts on its February start day, a correction of
    December invoiced in January on January 1st. (Azure lines always lie inside.)"""
    day = F.to_date("_p_start")
    inside = (day >= F.col("period_start")) & (day < F.col("period_end"))
    return F.when(inside, day).otherwise(F.col("period_start"))


def _text(c: str) -> Column:
    return F.nullif(F.trim(c), F.lit(""))


def _token_columns() -> list[Column]:
    """model_id, token_direction, token_cache_action: FOCUS SkuPriceDetails (ModelId,
    TokenDirection Input/Output, TokenCacheAction Uncached/Read/Write; some producers write
    TokenType Input/Output/CacheRead/CacheWrite instead), else the meter name: its model and
    direction, and a cache write or read named in it (an Azure input meter naming neither is
    uncached)."""
    spd, meter = F.col("_p_spd"), F.col("_p_meter")
    parsed = F.size(meter) == 3
    meter_dir = F.when(parsed, F.when(meter[2].startswith("i"), "input").otherwise("output"))
    words = F.lower(F.trim(F.coalesce(F.col("meter_name"), F.col("sku_description"))))
    named_cache = (
        F.when(words.rlike(CACHE_WRITE_PATTERN), F.lit("write"))
        .when(words.rlike(CACHE_READ_PATTERN), F.lit("read"))
        .when(parsed & (meter[1] != ""), F.lit("read"))
    )
    spd_model = F.nullif(F.trim(spd["ModelId"]), F.lit(""))
    # A FOCUS token line (a ModelId) whose SkuPriceDetails names no direction: its SkuMeter
    # (`Input Tokens`, `Cache Read Input Tokens`) does.
    named_dir = F.when(
        spd_model.isNotNull() | meter.isNotNull(),
        F.when(words.rlike(r"(^|[\s-])(output|outp|outpt)([\s-]|$)"), F.lit("output")).when(
            words.rlike(r"(^|[\s-])(input|inp|inpt)([\s-]|$)"), F.lit("input")
        ),
    )
    kind = F.regexp_replace(
        F.lower(F.trim(F.coalesce(spd["TokenDirection"], spd["TokenType"]))), r"[\s_-]", ""
    )
    spd_dir = F.when(kind.isin("input", "output"), kind).when(kind.startswith("cache"), "input")
    spd_cache = F.lower(F.trim(spd["TokenCacheAction"]))
    spd_cache = F.coalesce(
        F.when(spd_cache.isin("uncached", "read", "write"), spd_cache),
        F.when(kind == "cacheread", F.lit("read")).when(kind == "cachewrite", F.lit("write")),
    )
    direction = F.coalesce(spd_dir, meter_dir, named_dir)
    return [
        F.coalesce(spd_model, F.when(parsed, F.regexp_replace(meter[0], r"[\s-]+", "-"))).alias(
            "model_id"
        ),
        direction.alias("token_direction"),
        F.coalesce(
            spd_cache,
            F.when(direction == "input", F.coalesce(named_cache, F.when(parsed, "uncached"))),
        ).alias("token_cache_action"),
    ]


def with_canonical_billing(rows: DataFrame) -> DataFrame:
    """FOCUS-aligned columns (meaningful where status is loaded)."""
    category = _service_category()
    microsoft = F.create_map(*[F.lit(x) for kv in PROVIDERS.items() for x in kv])
    of_azure = microsoft[F.col("source_format")]
    return rows.select(
        "*",
        F.coalesce(_text("provider_name"), _text("provider_name_legacy"), of_azure).alias(
            "provider_name_c"
        ),
        F.coalesce(_text("host_provider"), of_azure).alias("host_provider_c"),
        F.coalesce(_text("invoice_issuer"), of_azure).alias("invoice_issuer_c"),
        F.trim("account_id").alias("billing_account_id"),
        _text("sub_account_id").alias("sub_account_id_c"),
        F.col("_p_start").alias("charge_period_start"),
        F.col("_p_end").alias("charge_period_end"),
        _accounting_day().alias("usage_date"),
        F.col("_p_category").alias("charge_category_c"),
        F.col("_p_class").alias("charge_class_c"),
        F.trim("service_name").alias("service_name_c"),
        F.coalesce(
            _text("service_category"), category[F.trim("service_name")], F.lit("Other")
        ).alias("service_category_c"),
        F.coalesce(
            _text("service_subcategory"),
            F.when(F.size("_p_meter") == 3, F.lit("Generative AI")),
        ).alias("service_subcategory_c"),
        _text("region").alias("region_name"),
        _text("sku_id").alias("sku_id_c"),
        _text("sku_description").alias("sku_description_c"),
        *_token_columns(),
        _text("resource_id").alias("resource_id_c"),
        _text("resource_group").alias("resource_group_c"),
        F.col("_p_tags").alias("tags_c"),
        F.col("_p_qty").alias("consumed_quantity"),
        _text("unit").alias("consumed_unit"),
        F.col("_p_cost").alias("billed_cost_c"),
        F.col("_p_effective").alias("effective_cost_c"),
        F.trim("currency").alias("billing_currency"),
        F.col("run_id").alias("source_run_id"),
        F.col("_lineage").alias("lineage"),
        # The run facts carry dataset_status (discovery decides it); provisional without them.
        *(
            []
            if "dataset_status" in rows.columns
            else [F.lit("provisional").alias("dataset_status")]
        ),
    )


def _rename_canonical(df: DataFrame) -> DataFrame:
    # Spark resolves names ignoring case: canonical names that collide with the intermediate
    # ones are built with a `_c` suffix, and the intermediate columns dropped first.
    clash = [
        "provider_name", "host_provider", "invoice_issuer", "sub_account_id", "service_name",
        "service_category", "service_subcategory", "sku_id", "sku_description", "resource_id",
        "resource_group", "tags", "billed_cost", "effective_cost", "charge_category",
        "charge_class",
    ]  # fmt: skip
    df = df.drop(*clash)
    for name in clash:
        df = df.withColumnRenamed(f"{name}_c", name)
    return df


def with_usd(df: DataFrame, fx: DataFrame) -> DataFrame:
    """USD by the FX feed, or by the export's own USD column where it has one (recorded)."""
    from inference_ledger.fx import to_usd, with_fx_rate

    df = with_fx_rate(df, fx, "billing_currency", "usage_date")
    own = F.col("_p_usd").isNotNull() & (F.col("billing_currency") != "USD")
    own_rate = _rate_from(F.col("_p_usd"), F.col("billed_cost"))
    return (
        df.withColumn(
            "fx_source",
            F.when(F.col("billing_currency") == "USD", F.lit("none"))
            .when(own, F.lit("export"))
            .otherwise(F.lit("fx_feed")),
        )
        .withColumn(
            "fx_rate",
            F.when(own, F.coalesce(own_rate, F.col("fx_rate"))).otherwise(F.col("fx_rate")),
        )
        .withColumn(
            "billed_cost_usd",
            F.when(own, F.col("_p_usd").cast(T.DecimalType(38, 10))).otherwise(
                to_usd("billed_cost")
            ),
        )
        .withColumn(
            "effective_cost_usd",
            F.when(own, F.col("_p_usd").cast(T.DecimalType(38, 10))).otherwise(
                to_usd("effective_cost")
            ),
        )
    )


def _rate_from(num: Column, den: Column) -> Column:
    from inference_ledger.transform.contract import ratio

    return ratio(num, den).cast(T.DecimalType(18, 10))


def read_billing_rows(
    spark: SparkSession, runs: list[ExportRun]
) -> tuple[DataFrame | None, list[ExportRun]]:
    """Raw rows of every blob of every run, joined to their run's facts; runs whose files
    disagree with their manifest come back rejected (their rows are quarantined)."""
    raw = read_billing_files(spark, [path for r in runs for path, _ in r.blobs])
    if raw is None:
        return None, runs
    return with_run_facts(spark, raw, runs)


def with_run_facts(
    spark: SparkSession, raw: DataFrame, runs: list[ExportRun]
) -> tuple[DataFrame, list[ExportRun]]:
    """`read_billing_files` rows joined to their run's facts, after the manifest row-count
    check (a pass over `raw`: a caller with large exports caches `raw`)."""
    runs = with_row_count_check(runs, rows_per_file(raw))
    facts = with_current_run(runs_frame(spark, runs)).drop("source")
    return raw.join(F.broadcast(facts), "source_file", how="left"), runs


def billing_records(rows: DataFrame, fx: DataFrame, rules: WorkloadRules) -> DataFrame:
    """Raw billing rows (joined to run facts) -> accounting records with canonical columns."""
    typed = (
        rows.transform(with_line_numbers)
        .transform(with_billing_parsed)
        .transform(with_billing_status)
        .transform(with_canonical_billing)
        .transform(_rename_canonical)
        .transform(lambda df: with_usd(df, fx))
        .transform(lambda df: with_workload(df, rules))
        .withColumn(
            "source",
            F.when(F.col("source_format").startswith("focus"), F.lit("billing.focus")).otherwise(
                F.lit("billing.azure")
            ),
        )
    )
    return typed.select(
        *[F.col(c) for c in BILLING_COLUMNS if c not in R.ACCOUNTING_COLUMNS],
        "source",
        "source_file",
        "line_number",
        "status",
        "reason",
        "field",
        "raw_record",
    )


def rows_per_file(rows: DataFrame) -> dict[str, int]:
    return {
        r["source_file"]: r["n"]
        for r in rows.groupBy("source_file").agg(F.count(F.lit(1)).alias("n")).collect()
    }
