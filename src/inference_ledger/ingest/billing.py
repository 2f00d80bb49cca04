"""Billing files of every dialect -> canonical FOCUS-aligned billing lines.

Dialects are detected from each file's header:
- `azure-ea`: Azure cost details, EA (PascalCase: `CostInBillingCurrency`, `Date`, ...);
- `azure-mca`: Azure cost details, MCA (camelCase: `costInBillingCurrency`, `costInUsd`, ...);
- `focus-1.0` / `focus-1.1` / `focus-1.2`: FOCUS (`BilledCost`, `ChargePeriodStart`, ...).
Each is mapped onto one set of intermediate string columns, then typed and checked the same
way. Actual cost: CostInBillingCurrency -> BilledCost (and EffectiveCost, since an actual-cost
export carries no amortisation). `x_` columns of FOCUS are kept as JSON in `x_columns`.
"""

from __future__ import annotations

from collections import defaultdict
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

# Intermediate column -> candidate source columns per dialect family (matched ignoring case).
AZURE_MAP = {
    "account_id": ["BillingAccountId"],
    "account_name": ["BillingAccountName"],
    "sub_account_id": ["SubscriptionId", "SubscriptionGuid"],
    "resource_group": ["ResourceGroup", "resourceGroupName"],
    "charge_start": ["Date", "UsageDate"],
    "charge_end": [],
    "service_name": ["MeterCategory"],
    "service_category": [],
    "sku_id": ["MeterId"],
    "sku_description": ["MeterName"],
    "region": ["ResourceLocation", "MeterRegion"],
    "unit": ["UnitOfMeasure"],
    "quantity": ["Quantity"],
    "billed_cost": ["CostInBillingCurrency"],
    "effective_cost": [],
    "currency": ["BillingCurrencyCode", "billingCurrency", "BillingCurrency"],
    "usd_cost": ["costInUsd", "CostInUsd"],
    "resource_id": ["ResourceId", "InstanceId"],
    "tags": ["Tags"],
    "charge_type": ["ChargeType"],
    "charge_category": [],
    "charge_class": [],
    "provider_name": [],
}
FOCUS_MAP = {
    "account_id": ["BillingAccountId"],
    "account_name": ["BillingAccountName"],
    "sub_account_id": ["SubAccountId"],
    "resource_group": ["x_ResourceGroupName"],
    "charge_start": ["ChargePeriodStart"],
    "charge_end": ["ChargePeriodEnd"],
    "service_name": ["ServiceName"],
    "service_category": ["ServiceCategory"],
    "sku_id": ["SkuId"],
    "sku_description": ["x_SkuDescription", "SkuMeter", "ChargeDescription"],
    "region": ["RegionId", "RegionName", "Region"],
    "unit": ["ConsumedUnit"],
    "quantity": ["ConsumedQuantity"],
    "billed_cost": ["BilledCost"],
    "effective_cost": ["EffectiveCost"],
    "currency": ["BillingCurrency"],
    "usd_cost": [],
    "resource_id": ["ResourceId"],
    "tags": ["Tags"],
    "charge_type": [],
    "charge_category": ["ChargeCategory"],
    "charge_class": ["ChargeClass"],
    "provider_name": ["ServiceProviderName", "ProviderName", "Provider"],
}
INTERMEDIATE = list(AZURE_MAP)
REQUIRED = {
    "azure-ea": ["BillingAccountId", "SubscriptionId", "Date", "MeterCategory", "MeterName",
                 "UnitOfMeasure", "Quantity", "CostInBillingCurrency", "BillingCurrencyCode",
                 "ChargeType"],
    "azure-mca": ["billingAccountId", "date", "meterCategory", "meterName", "unitOfMeasure",
                  "quantity", "costInBillingCurrency", "billingCurrency", "chargeType"],
    "focus": ["BilledCost", "EffectiveCost", "BillingAccountId", "BillingCurrency",
              "BillingPeriodStart", "BillingPeriodEnd", "ChargeCategory", "ChargePeriodStart",
              "ChargePeriodEnd", "ServiceName"],
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
    "Cognitive Services": "AI and Machine Learning",
    "Storage": "Storage",
    "Bandwidth": "Networking",
    "Virtual Network": "Networking",
}
PROVIDERS = {"azure-ea": "Microsoft", "azure-mca": "Microsoft"}
BILLING_COLUMNS = [c.name for c in contracts.columns("lake", "billing_lines")]


def detect_dialect(header: tuple[str, ...]) -> str | None:
    names = set(header)
    lower = {h.lower() for h in header}
    if "BilledCost" in names and "ChargePeriodStart" in names:
        if {"ServiceProviderName", "InvoiceId", "BillingAccountType"} & names:
            return "focus-1.2"
        if {"ServiceSubcategory", "CapacityReservationId", "SkuMeter"} & names:
            return "focus-1.1"
        return "focus-1.0"
    if "CostInBillingCurrency" in names:
        return "azure-ea"
    if "costinbillingcurrency" in lower:
        return "azure-mca"
    return None


def _family(dialect: str) -> str:
    return "focus" if dialect.startswith("focus") else dialect


def _column_map(dialect: str, header: tuple[str, ...], path: str) -> dict[str, str | None]:
    by_lower = {h.lower(): h for h in header}
    missing = [c for c in REQUIRED[_family(dialect)] if c.lower() not in by_lower]
    if dialect.startswith("focus") and not (
        {"providername", "serviceprovidername", "provider"} & set(by_lower)
    ):
        missing.append("ProviderName or ServiceProviderName")
    if missing:
        raise R.InputError(
            f"{path}: {dialect} file is missing required column(s) {', '.join(missing)}"
        )
    mapping = FOCUS_MAP if dialect.startswith("focus") else AZURE_MAP
    out: dict[str, str | None] = {}
    for target, candidates in mapping.items():
        out[target] = next((by_lower[c.lower()] for c in candidates if c.lower() in by_lower), None)
    return out


def _x_columns(header: tuple[str, ...]) -> Column:
    xs = [h for h in header if h.startswith("x_")]
    if not xs:
        return F.lit(None).cast("string")
    return F.to_json(F.create_map(*[e for h in xs for e in (F.lit(h), F.col(f"`{h}`"))]))


def _select(
    df: DataFrame, header: tuple[str, ...], dialect: str, path_col: Column, line: Column
) -> DataFrame:
    cmap = _column_map(dialect, header, "(group)")
    return df.select(
        *[
            (F.col(f"`{src}`").cast("string") if src else F.lit(None).cast("string")).alias(name)
            for name, src in cmap.items()
        ],
        _x_columns(header).alias("x_columns"),
        F.lit(dialect).alias("source_format"),
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
    from 1. A file whose header matches no dialect is an error naming it.
    """
    csv_groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    frames = []
    for path in files:
        if path.name.endswith(".parquet"):
            header, schema = _parquet_header(spark, path)
            dialect = detect_dialect(header)
            if dialect is None:
                raise R.InputError(
                    f"{path}: not a known billing export (header: {', '.join(header[:6])}, ...)"
                )
            _column_map(dialect, header, str(path))
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
        dialect = detect_dialect(header)
        if dialect is None:
            raise R.InputError(
                f"{path}: not a known billing export (header: {', '.join(header[:6])}, ...)"
            )
        _column_map(dialect, header, str(path))
        csv_groups[header].append(str(path))
    for header, paths in sorted(csv_groups.items()):
        schema = T.StructType(
            [T.StructField(h, T.StringType(), True) for h in header]
            + [T.StructField(R.CORRUPT, T.StringType(), True)]
        )
        df = (
            spark.read.schema(schema)
            .option("header", True)
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", R.CORRUPT)
            .option("quote", '"')
            .option("escape", '"')
            .csv(paths)
            .withColumn("_row_id", F.monotonically_increasing_id())
        )
        dialect = detect_dialect(header)
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
        rows.join(F.broadcast(first), "source_file", "left")
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


def _parsed_tags(c: str) -> Column:
    """Tags come as JSON or as Azure `"k": "v","k2": "v2"` fragments without braces."""
    txt = F.trim(F.col(c))
    as_json = F.when(txt.startswith("{"), txt).otherwise(F.concat(F.lit("{"), txt, F.lit("}")))
    return F.from_json(as_json, "map<string,string>")


def with_billing_parsed(rows: DataFrame) -> DataFrame:
    """Typed `_p_*` columns from the intermediate strings."""
    # Parsed once (a column, not an expression repeated in each use).
    rows = rows.withColumn("_p_tags_map", _parsed_tags("tags"))
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
            (F.to_date("_p_start") < F.col("period_start"))
            | (F.to_date("_p_start") >= F.col("period_end")),
            "ChargePeriodStart",
            "charge date is outside the export's billing period",
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


def with_canonical_billing(rows: DataFrame) -> DataFrame:
    """FOCUS-aligned columns (meaningful where status is loaded)."""
    category = F.create_map(*[F.lit(x) for kv in SERVICE_CATEGORIES.items() for x in kv])
    provider = F.create_map(*[F.lit(x) for kv in PROVIDERS.items() for x in kv])
    return rows.select(
        "*",
        F.coalesce(
            F.nullif(F.trim("provider_name"), F.lit("")), provider[F.col("source_format")]
        ).alias("provider_name_c"),
        F.trim("account_id").alias("billing_account_id"),
        F.nullif(F.trim("sub_account_id"), F.lit("")).alias("sub_account_id_c"),
        F.col("_p_start").alias("charge_period_start"),
        F.col("_p_end").alias("charge_period_end"),
        F.to_date("_p_start").alias("usage_date"),
        F.col("_p_category").alias("charge_category_c"),
        F.col("_p_class").alias("charge_class_c"),
        F.trim("service_name").alias("service_name_c"),
        F.coalesce(
            F.nullif(F.trim("service_category"), F.lit("")),
            category[F.trim("service_name")],
            F.lit("Other"),
        ).alias("service_category_c"),
        F.nullif(F.trim("region"), F.lit("")).alias("region_name"),
        F.nullif(F.trim("sku_id"), F.lit("")).alias("sku_id_c"),
        F.nullif(F.trim("sku_description"), F.lit("")).alias("sku_description_c"),
        F.nullif(F.trim("resource_id"), F.lit("")).alias("resource_id_c"),
        F.nullif(F.trim("resource_group"), F.lit("")).alias("resource_group_c"),
        F.col("_p_tags").alias("tags_c"),
        F.col("_p_qty").alias("consumed_quantity"),
        F.nullif(F.trim("unit"), F.lit("")).alias("consumed_unit"),
        F.col("_p_cost").alias("billed_cost_c"),
        F.col("_p_effective").alias("effective_cost_c"),
        F.trim("currency").alias("billing_currency"),
        F.col("run_id").alias("source_run_id"),
        # Placeholders until the dialect mapping fills them (issue 14 work in progress).
        *[
            F.lit(None).cast("string").alias(c)
            for c in (
                "service_subcategory", "host_provider", "invoice_issuer", "model_id",
                "token_direction", "token_cache_action", "lineage",
            )
        ],  # fmt: skip
        F.lit("provisional").alias("dataset_status"),
    )


def _rename_canonical(df: DataFrame) -> DataFrame:
    # Spark resolves names ignoring case: canonical names that collide with the intermediate
    # ones are built with a `_c` suffix, and the intermediate columns dropped first.
    clash = [
        "provider_name", "sub_account_id", "service_name", "service_category", "sku_id",
        "sku_description", "resource_id", "resource_group", "tags", "billed_cost", "effective_cost",
        "charge_category", "charge_class",
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
    return raw.join(F.broadcast(facts), "source_file", "left"), runs


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
