"""FOCUS 1.3 Contract Commitment dataset: the commitments a provider delivers beside its cost
and usage files (ContractCommitmentId, no BilledCost), read into the lake table
`contract_commitments`. The bill's `ContractApplied` column says how much of each commitment a
charge consumed; transform/commitment.py burns the Spend commitments down with it.

A provider delivers the whole dataset again with each export run, so every row of every
delivery is accounted for: the newest delivery of a commitment (ContractCommitmentLastUpdated,
then the run's submitted time) loads, an identical older copy is deduplicated, a different
older one is superseded.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from inference_ledger import contracts
from inference_ledger.fx import to_usd, with_fx_rate
from inference_ledger.ingest import records as R
from inference_ledger.ingest.billing import with_line_numbers
from inference_ledger.ingest.exports import ExportRun
from inference_ledger.spark import local_frame

SOURCE = "billing.focus.contract_commitment"
LAKE_TABLE = "contract_commitments"
# lake column <- FOCUS column (FOCUS 1.3 "Contract Commitment" dataset).
COLUMNS = {
    "commitment_id": "ContractCommitmentId",
    "contract_id": "ContractId",
    "category": "ContractCommitmentCategory",
    "lifecycle_status": "ContractCommitmentLifecycleStatus",
    "commitment_type": "ContractCommitmentType",
    "description": "ContractCommitmentDescription",
    "service_provider": "ServiceProviderName",
    "invoice_issuer": "InvoiceIssuerName",
    "amount": "ContractCommitmentCost",
    "currency": "BillingCurrency",
    "quantity": "ContractCommitmentQuantity",
    "unit": "ContractCommitmentUnit",
    "period_start": "ContractCommitmentPeriodStart",
    "period_end": "ContractCommitmentPeriodEnd",
    "applicability": "ContractCommitmentApplicability",
    "last_updated": "ContractCommitmentLastUpdated",
}
CATEGORIES = ("Spend", "Usage")
LIFECYCLE = ("Proposed", "Pending", "Active", "Exhausted", "Expired", "Canceled", "Superseded")
# What the burn-down counts: a Proposed commitment has no financial effect yet, a Canceled or
# Superseded one no longer binds (FOCUS ContractCommitmentLifecycleStatus).
BINDING = ("Pending", "Active", "Exhausted", "Expired")
_RUN_SCHEMA = "source_file string, source_run_id string, submitted_at timestamp"


def files_of(runs: list[ExportRun]) -> list[Path]:
    return [p for r in runs for p, _ in r.blobs]


def read_rows(spark: SparkSession, runs: list[ExportRun]) -> DataFrame | None:
    """Every delivered row as strings named by the lake's intermediate names, with its file,
    line, export run and the run's submitted time. Column names are matched without regard to
    case; an absent column reads as empty (its row checks say what is missing)."""
    frames = []
    for path in files_of(runs):
        frame = _read_file(spark, path)
        if frame is not None:
            frames.append(frame)
    rows = R.union_all(frames)
    if rows is None:
        return None
    facts = local_frame(
        spark, [(str(p), r.run_id, r.submitted_at) for r in runs for p, _ in r.blobs], _RUN_SCHEMA
    )
    return with_line_numbers(rows).join(F.broadcast(facts), "source_file", how="left")


def _read_file(spark: SparkSession, path: Path) -> DataFrame | None:
    if path.name.endswith(".parquet"):
        df = spark.read.parquet(str(path))
        header = tuple(df.columns)
        line, is_csv = F.col("_metadata.row_index") + 1, F.lit(False)
        corrupt = F.lit(None).cast("string")
    else:
        header = R.read_header(path)
        if not header:
            return None  # no rows to account for; the file is still checksummed and counted
        df = R.read_csv_strings(spark, [str(path)], header)
        line, is_csv = F.monotonically_increasing_id(), F.lit(True)
        corrupt = F.col(R.CORRUPT)
    by_lower = {h.lower().lstrip("\ufeff"): h for h in header}
    return df.select(
        *[
            (
                F.col(f"`{by_lower[src.lower()]}`").cast("string")
                if src.lower() in by_lower
                else F.lit(None).cast("string")
            ).alias(name)
            for name, src in COLUMNS.items()
        ],  # fmt: skip
        R.file_path_col().alias("source_file"),
        line.alias("line_number"),
        is_csv.alias("_csv"),
        corrupt.alias(R.CORRUPT),
    )


def _day(c: str) -> Column:
    """FOCUS writes the period bounds as date-times; real files also write plain dates."""
    txt = F.trim(F.col(c))
    iso = F.regexp_replace(F.regexp_replace(txt, " ", "T"), "[Zz]$", "+00:00")
    return F.coalesce(
        F.when(txt.rlike(r"^\d{4}-\d{2}-\d{2}$"), F.try_to_date(txt, "yyyy-MM-dd")),
        F.when(
            txt.rlike(
                r"^\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$"
            ),
            F.to_date(F.try_to_timestamp(iso)),
        ),
    )


def with_parsed(rows: DataFrame) -> DataFrame:
    """Typed `_p_*` columns, each parsed once."""
    ts = F.regexp_replace(F.regexp_replace(F.trim("last_updated"), " ", "T"), "[Zz]$", "+00:00")
    return (
        rows.withColumn("_p_amount", R.parse_decimal("amount", 28, 10))
        .withColumn("_p_quantity", R.parse_decimal("quantity", 28, 10))
        .withColumn("_p_start", _day("period_start"))
        .withColumn("_p_end", _day("period_end"))
        .withColumn("_p_updated", F.try_to_timestamp(ts))
        .withColumn("_p_applicability", F.from_json(F.trim("applicability"), "map<string,string>"))
    )


def _checks() -> list[tuple[Column, str, str]]:
    spend = F.trim("category") == "Spend"
    required = [
        ("commitment_id", "ContractCommitmentId"),
        ("category", "ContractCommitmentCategory"),
        ("lifecycle_status", "ContractCommitmentLifecycleStatus"),
        ("period_start", "ContractCommitmentPeriodStart"),
        ("period_end", "ContractCommitmentPeriodEnd"),
    ]
    return [
        (F.col(R.CORRUPT).isNotNull(), "", "malformed CSV row (wrong number of fields or quoting)"),
        *[(R.is_blank(c), src, f"required field {src} is empty") for c, src in required],
        (
            ~F.trim("category").isin(*CATEGORIES),
            "ContractCommitmentCategory",
            f"ContractCommitmentCategory must be one of {list(CATEGORIES)}",
        ),
        (
            ~F.trim("lifecycle_status").isin(*LIFECYCLE),
            "ContractCommitmentLifecycleStatus",
            f"ContractCommitmentLifecycleStatus must be one of {list(LIFECYCLE)}",
        ),
        (
            F.col("_p_start").isNull(),
            "ContractCommitmentPeriodStart",
            "ContractCommitmentPeriodStart is not an ISO date or date-time",
        ),
        (
            F.col("_p_end").isNull(),
            "ContractCommitmentPeriodEnd",
            "ContractCommitmentPeriodEnd is not an ISO date or date-time",
        ),
        (
            F.col("_p_end") <= F.col("_p_start"),
            "ContractCommitmentPeriodEnd",
            "ContractCommitmentPeriodEnd is not after ContractCommitmentPeriodStart",
        ),
        (
            spend & R.is_blank("amount"),
            "ContractCommitmentCost",
            "a Spend commitment must carry ContractCommitmentCost",
        ),
        (
            R.bad_when_present("amount", F.col("_p_amount")),
            "ContractCommitmentCost",
            "ContractCommitmentCost is not a decimal number",
        ),
        (
            ~R.is_blank("amount") & ~F.trim("currency").rlike("^[A-Z]{3}$"),
            "BillingCurrency",
            "BillingCurrency is not an ISO currency code",
        ),
        (
            R.bad_when_present("quantity", F.col("_p_quantity")),
            "ContractCommitmentQuantity",
            "ContractCommitmentQuantity is not a decimal number",
        ),
        (
            R.bad_when_present("last_updated", F.col("_p_updated")),
            "ContractCommitmentLastUpdated",
            "ContractCommitmentLastUpdated is not an ISO date-time",
        ),
        (
            R.bad_when_present("applicability", F.col("_p_applicability")),
            "ContractCommitmentApplicability",
            "ContractCommitmentApplicability is not a JSON object",
        ),
    ]


def with_status(rows: DataFrame) -> DataFrame:
    """The first failed check quarantines a row; of the rest, the newest delivery of each
    commitment loads (ContractCommitmentLastUpdated, then the run's submitted time)."""
    rows = R.with_first_failure(rows, _checks())
    reason, field = F.col("_reason"), F.col("_field")
    valid = reason.isNull()
    newest = Window.partitionBy(valid, F.trim("commitment_id")).orderBy(
        F.col("_p_updated").desc_nulls_last(),
        F.col("submitted_at").desc_nulls_last(),
        F.col("source_file").desc(),
        F.col("line_number").desc_nulls_last(),
    )
    content = F.struct(*[F.trim(c) for c in COLUMNS])
    winner = F.first(F.struct(F.col("source_file"), F.col("line_number"))).over(newest)
    first = F.row_number().over(newest) == 1
    status = (
        F.when(~valid, F.lit(R.QUARANTINED))
        .when(first, F.lit(R.LOADED))
        .when(content == F.first(content).over(newest), F.lit(R.DEDUPLICATED))
        .otherwise(F.lit(R.SUPERSEDED))
    )
    why = (
        F.when(~valid, reason)
        .when(first, F.lit(None).cast("string"))
        .otherwise(
            F.concat(
                F.when(status == R.DEDUPLICATED, F.lit("the same commitment as in ")).otherwise(
                    F.lit("a newer delivery of the commitment restates it: ")
                ),
                winner["source_file"],
                F.lit(" line "),
                F.coalesce(winner["line_number"].cast("string"), F.lit("?")),
            )
        )
    )
    # One projection: the window is computed once (records.first_wins_status).
    return (
        rows.withColumns({"status": status, "reason": why})
        .withColumn("field", F.when(~valid, field))
        .drop("_reason", "_field")
    )


def with_usd(rows: DataFrame, fx: DataFrame) -> DataFrame:
    """The amount in USD at the rate of the term's start; a loaded row whose rate is missing
    is quarantined (the commitment loads once the rate is delivered)."""
    df = with_fx_rate(
        rows.withColumn("_cc_currency", F.trim("currency")), fx, "_cc_currency", "_p_start"
    )
    no_rate = (F.col("status") == R.LOADED) & F.col("_p_amount").isNotNull()
    no_rate = no_rate & F.col("fx_rate").isNull()
    reason = F.concat(
        F.lit("no FX rate to USD for "),
        F.col("_cc_currency"),
        F.lit(" on "),
        F.col("_p_start").cast("string"),
        F.lit(" (ContractCommitmentPeriodStart): the amount cannot be stated in USD"),
    )
    return (
        df.withColumn("amount_usd", to_usd("_p_amount"))
        .withColumn("reason", F.when(no_rate, reason).otherwise(F.col("reason")))
        .withColumn("field", F.when(no_rate, F.lit("BillingCurrency")).otherwise(F.col("field")))
        .withColumn("status", F.when(no_rate, F.lit(R.QUARANTINED)).otherwise(F.col("status")))
    )


def _text(c: str) -> Column:
    return F.nullif(F.trim(c), F.lit(""))


def commitment_records(rows: DataFrame, fx: DataFrame) -> DataFrame:
    """Lake columns + the accounting columns of every delivered row."""
    df = rows.transform(with_parsed).transform(with_status).transform(lambda d: with_usd(d, fx))
    lake_cols = [c.name for c in contracts.columns("lake", LAKE_TABLE)]
    typed = {
        "commitment_id": F.trim("commitment_id"),
        "contract_id": _text("contract_id"),
        "commitment_type": _text("commitment_type"),
        "description": _text("description"),
        "category": F.trim("category"),
        "lifecycle_status": F.trim("lifecycle_status"),
        "provider": F.coalesce(_text("service_provider"), _text("invoice_issuer")),
        "amount": F.col("_p_amount"),
        "currency": _text("currency"),
        "quantity": F.col("_p_quantity"),
        "unit": _text("unit"),
        "start_date": F.col("_p_start"),
        "end_date": F.col("_p_end"),
        "applicability": _text("applicability"),
        "last_updated_at": F.col("_p_updated"),
    }
    raw = [*COLUMNS, R.CORRUPT]
    return df.select(
        *[typed.get(c, F.col(c)).alias(c) for c in lake_cols if c not in R.ACCOUNTING_COLUMNS],
        F.lit(SOURCE).alias("source"),
        "source_file",
        "line_number",
        "status",
        "reason",
        "field",
        F.when(F.col("status") != R.LOADED, R.raw_record(raw)).alias("raw_record"),
    )
