"""Azure Cost Management cost-details exports (EA, actual cost) -> canonical billing lines.

Daily exports are month-to-date: each run restates the whole month so far, so only the
newest run of a (scope, billing month) counts and the rows of older runs are `superseded`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import jsonschema
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger import contracts
from inference_ledger.ingest import records as R
from inference_ledger.workload import WorkloadRules, with_workload

SOURCE = "billing.azure"
EA_COLUMNS = [c.name for c in contracts.columns("inputs", "azure_ea_cost_details")]
EA_REQUIRED = contracts.required_columns("inputs", "azure_ea_cost_details")

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
}
# MeterCategory -> FOCUS ServiceCategory.
SERVICE_CATEGORIES = {
    "Virtual Machines": "Compute",
    "Azure OpenAI": "AI and Machine Learning",
    "Cognitive Services": "AI and Machine Learning",
    "Storage": "Storage",
    "Bandwidth": "Networking",
    "Virtual Network": "Networking",
}

RUN_SCHEMA = T.StructType(
    [
        T.StructField("export_name", T.StringType(), False),
        T.StructField("scope_id", T.StringType(), False),
        T.StructField("billing_month", T.StringType(), False),
        T.StructField("period_start", T.DateType(), False),
        T.StructField("period_end", T.DateType(), False),  # exclusive
        T.StructField("run_id", T.StringType(), False),
        T.StructField("submitted_at", T.TimestampType(), False),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("manifest_rows", T.LongType(), False),
    ]
)


@dataclass(frozen=True)
class ExportRun:
    export_name: str
    scope_id: str
    billing_month: str
    period_start: date
    period_end: date
    run_id: str
    submitted_at: datetime
    manifest_path: Path
    blobs: tuple[tuple[Path, int], ...]


def _parse_ts(value: str) -> datetime:
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def read_manifest(path: Path) -> ExportRun:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
        jsonschema.validate(doc, contracts.load_schema("inputs", "azure_export_manifest"))
    except (json.JSONDecodeError, jsonschema.ValidationError) as exc:
        msg = exc.message if isinstance(exc, jsonschema.ValidationError) else str(exc)
        raise R.InputError(f"{path}: invalid export manifest: {msg}") from exc
    run_dir = path.parent
    folder = run_dir.parent.name  # YYYYMMDD-YYYYMMDD, the billing period
    try:
        first, last = (datetime.strptime(p, "%Y%m%d").date() for p in folder.split("-"))
    except ValueError as exc:
        raise R.InputError(f"{path}: folder {folder!r} is not YYYYMMDD-YYYYMMDD") from exc
    blobs = []
    for blob in doc["blobs"]:
        name = blob["blobName"]
        candidates = [run_dir / name, run_dir / Path(name).name]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise R.InputError(f"{path}: blob {name!r} listed in the manifest is missing")
        blobs.append((found, int(blob["dataRowCount"])))
    info = doc["runInfo"]
    return ExportRun(
        export_name=doc["exportConfig"]["exportName"],
        scope_id=doc["exportConfig"]["resourceId"],
        billing_month=f"{first:%Y-%m}",
        period_start=first,
        period_end=date.fromordinal(last.toordinal() + 1),
        run_id=info["runId"],
        submitted_at=_parse_ts(info["submittedTime"]),
        manifest_path=path,
        blobs=tuple(blobs),
    )


def discover_runs(landing: Path) -> list[ExportRun]:
    return [
        read_manifest(p)
        for p in sorted((landing / "billing" / "azure").glob("*/*/*/manifest.json"))
    ]


def runs_frame(spark: SparkSession, runs: list[ExportRun]) -> DataFrame:
    rows = [
        (
            r.export_name,
            r.scope_id,
            r.billing_month,
            r.period_start,
            r.period_end,
            r.run_id,
            r.submitted_at.astimezone(UTC).replace(tzinfo=None),
            str(path),
            rows,
        )
        for r in runs
        for path, rows in r.blobs
    ]
    return spark.createDataFrame(rows, RUN_SCHEMA)


def with_current_run(runs: DataFrame) -> DataFrame:
    """Flag `is_current_run`: the newest submitted run of each (scope, billing month)."""
    per_run = runs.select("scope_id", "billing_month", "run_id", "submitted_at").distinct()
    ranked = per_run.withColumn(
        "_rank",
        F.dense_rank().over(
            Window.partitionBy("scope_id", "billing_month").orderBy(
                F.col("submitted_at").desc(), F.col("run_id").desc()
            )
        ),
    )
    current = ranked.select("run_id", (F.col("_rank") == 1).alias("is_current_run"))
    return runs.join(current, "run_id", "left")


def _parse_usage_date(c: str):
    txt = F.trim(F.col(c))
    return F.coalesce(
        F.when(txt.rlike(r"^\d{2}/\d{2}/\d{4}$"), F.try_to_date(txt, "MM/dd/yyyy")),
        F.when(
            txt.rlike(r"^\d{4}-\d{2}-\d{2}"),
            F.try_to_date(F.substring(txt, 1, 10), "yyyy-MM-dd"),
        ),
    )


def _normalised_tags(c: str):
    """EA tags come as JSON or as `"k": "v","k2": "v2"` fragments without braces."""
    txt = F.trim(F.col(c))
    as_json = F.when(txt.startswith("{"), txt).otherwise(F.concat(F.lit("{"), txt, F.lit("}")))
    parsed = F.from_json(as_json, "map<string,string>")
    return F.when(R.is_blank(c), F.lit(None)).otherwise(F.to_json(parsed)), parsed


def with_ea_parsed(rows: DataFrame) -> DataFrame:
    """Typed `_p_*` columns from the raw string columns of an EA export."""
    tags_json, tags_map = _normalised_tags("Tags")
    charge = F.create_map(*[F.lit(x) for k, (cat, _) in CHARGE_TYPES.items() for x in (k, cat)])
    charge_class = F.create_map(
        *[F.lit(x) for k, (_, cls) in CHARGE_TYPES.items() if cls for x in (k, cls)]
    )
    return (
        rows.withColumn("raw_record", R.raw_record([*EA_COLUMNS, R.CORRUPT]))
        .withColumn("_p_date", _parse_usage_date("Date"))
        .withColumn("_p_cost", R.parse_decimal("CostInBillingCurrency"))
        .withColumn("_p_qty", R.parse_decimal("Quantity"))
        .withColumn("_p_tags", tags_json)
        .withColumn("_p_tags_ok", R.is_blank("Tags") | tags_map.isNotNull())
        .withColumn("_p_category", charge[F.trim(F.col("ChargeType"))])
        .withColumn("_p_class", charge_class[F.trim(F.col("ChargeType"))])
        # Spark resolves names case-insensitively: raw `Tags` would clash with canonical `tags`.
        .withColumnRenamed("Tags", "_raw_tags")
    )


def with_ea_status(rows: DataFrame) -> DataFrame:
    """Status, reason and field of each row: superseded run, or the first failed check."""
    checks = [
        (
            F.col(R.CORRUPT).isNotNull(),
            None,
            "malformed CSV row (wrong number of fields or quoting)",
        ),
        *[(R.is_blank(c), c, f"required field {c} is empty") for c in EA_REQUIRED],
        (F.col("_p_date").isNull(), "Date", "Date is not a date (MM/DD/YYYY or YYYY-MM-DD)"),
        (
            (F.col("_p_date") < F.col("period_start")) | (F.col("_p_date") >= F.col("period_end")),
            "Date",
            "Date is outside the export's billing period",
        ),
        (
            F.col("_p_cost").isNull(),
            "CostInBillingCurrency",
            "CostInBillingCurrency is not a decimal number",
        ),
        (F.col("_p_qty").isNull(), "Quantity", "Quantity is not a decimal number"),
        (
            ~F.trim(F.col("BillingCurrencyCode")).rlike("^[A-Z]{3}$"),
            "BillingCurrencyCode",
            "not an ISO currency code",
        ),
        (F.col("_p_category").isNull(), "ChargeType", "unknown ChargeType"),
        (~F.col("_p_tags_ok"), "Tags", "Tags is neither JSON nor key/value fragments"),
    ]
    checks = [(bad, fld or "", why) for bad, fld, why in checks]
    reason, field = R.first_failure(checks)
    superseded = ~F.col("is_current_run")
    status = (
        F.when(superseded, F.lit(R.SUPERSEDED))
        .when(reason.isNotNull(), F.lit(R.QUARANTINED))
        .otherwise(F.lit(R.LOADED))
    )
    why = F.when(
        superseded, F.lit("newer month-to-date run of the same scope and month")
    ).otherwise(reason)
    return (
        rows.withColumn("status", status)
        .withColumn("reason", why)
        .withColumn("field", F.when(superseded, F.lit(None)).otherwise(F.nullif(field, F.lit(""))))
    )


def with_canonical_billing(rows: DataFrame) -> DataFrame:
    """FOCUS-aligned columns from a parsed EA row (meaningful where status is loaded)."""
    category = F.create_map(*[F.lit(x) for kv in SERVICE_CATEGORIES.items() for x in kv])
    start = F.to_timestamp(F.col("_p_date"))
    return rows.select(
        "*",
        F.col("billing_month").alias("_bm"),
        F.lit("Microsoft").alias("provider_name"),
        F.trim("BillingAccountId").alias("billing_account_id"),
        F.trim("SubscriptionId").alias("sub_account_id"),
        start.alias("charge_period_start"),
        (start + F.expr("INTERVAL 1 DAY")).alias("charge_period_end"),
        F.col("_p_date").alias("usage_date"),
        F.col("_p_category").alias("charge_category"),
        F.col("_p_class").alias("charge_class"),
        F.trim("MeterCategory").alias("service_name"),
        F.coalesce(category[F.trim("MeterCategory")], F.lit("Other")).alias("service_category"),
        F.coalesce(F.nullif(F.trim("ResourceLocation"), F.lit("")), F.trim("MeterRegion")).alias(
            "region_name"
        ),
        F.col("MeterId").alias("sku_id"),
        F.trim("MeterName").alias("sku_description"),
        F.col("ResourceId").alias("resource_id"),
        F.col("ResourceGroup").alias("resource_group"),
        F.col("_p_tags").alias("tags"),
        F.col("_p_qty").alias("consumed_quantity"),
        F.trim("UnitOfMeasure").alias("consumed_unit"),
        F.col("_p_cost").alias("billed_cost"),
        # Actual-cost export: what is invoiced; amortisation comes from AmortizedCost exports.
        F.col("_p_cost").alias("effective_cost"),
        F.trim("BillingCurrencyCode").alias("billing_currency"),
        F.col("run_id").alias("source_run_id"),
    ).drop("_bm")


def read_ea_rows(spark: SparkSession, runs: list[ExportRun]) -> DataFrame | None:
    """Raw string rows of every blob of every run, joined to their run's facts."""
    files = [path for r in runs for path, _ in r.blobs]
    raw = R.read_csv_by_header(spark, files, EA_COLUMNS, EA_REQUIRED)
    if raw is None:
        return None
    run_facts = with_current_run(runs_frame(spark, runs)).drop("manifest_rows")
    return raw.join(F.broadcast(run_facts), "source_file", "left")


def manifest_mismatches(records: DataFrame, runs: list[ExportRun]) -> list[str]:
    """Blobs whose data rows differ from the manifest's dataRowCount."""
    counts = {
        r["source_file"]: r["n"]
        for r in records.groupBy("source_file").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    out = []
    for run in runs:
        for path, expected in run.blobs:
            got = counts.get(str(path), 0)
            if got != expected:
                out.append(f"{path}: manifest says {expected} data rows, file has {got}")
    return out


BILLING_COLUMNS = [c.name for c in contracts.columns("lake", "billing_lines")]


def billing_records(rows: DataFrame, fx: DataFrame, rules: WorkloadRules) -> DataFrame:
    """Raw EA rows (joined to run facts) -> accounting records with canonical billing columns."""
    from inference_ledger.fx import to_usd, with_fx_rate

    typed = (
        rows.transform(with_ea_parsed)
        .transform(with_ea_status)
        .transform(with_canonical_billing)
        .transform(lambda df: with_fx_rate(df, fx, "billing_currency", "usage_date"))
        .withColumn("billed_cost_usd", to_usd("billed_cost"))
        .withColumn("effective_cost_usd", to_usd("effective_cost"))
        .transform(lambda df: with_workload(df, rules))
    )
    return R.finish_records(
        typed,
        SOURCE,
        BILLING_COLUMNS,
        None,
        F.col("status"),
        F.col("reason"),
        F.col("field"),
    )
