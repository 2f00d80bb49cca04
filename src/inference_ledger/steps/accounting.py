"""Per-file accounting of an ingest: every file of the landing folder gets one row (rows read,
loaded, quarantined, superseded, deduplicated; checksum and size), and the rows not loaded go to
the run's quarantine with their reason, month and money at stake."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from inference_ledger import lake
from inference_ledger.ingest import records as R
from inference_ledger.run.context import EVERY_PERIOD_INPUTS, RunContext
from inference_ledger.spark import local_frame

# Where each source's rows say which month they belong to and what money they carry: the
# quarantine shows per period the rows and dollars at stake (marts.period_quarantine).
_MONTH_COLUMNS = ("billing_month", "usage_month", "revenue_date", "period_start")
_AMOUNT_COLUMNS = (("billed_cost", "billing_currency"), ("amount", "currency"))


def _month_of(records: DataFrame):
    """YYYY-MM of each row, or None for a source that is not month-specific (FX, prices,
    contract terms: every period rests on them)."""
    for name in _MONTH_COLUMNS:
        if name in records.columns:
            col = F.col(name)
            return col if name.endswith("_month") else F.date_format(col, "yyyy-MM")
    return None


def _money_of(records: DataFrame, month) -> tuple:
    """(amount, currency) columns of the money at stake in a row, typed for the quarantine."""
    if month is not None:
        for amount, currency in _AMOUNT_COLUMNS:
            if amount in records.columns and currency in records.columns:
                return F.col(amount).cast("decimal(38,10)"), F.col(currency).cast("string")
    return F.lit(None).cast("decimal(38,10)"), F.lit(None).cast("string")


def account(
    spark: SparkSession, ctx: RunContext, name: str, records: DataFrame, files: list[Path]
) -> list[dict]:
    """Per-file counts (including empty files) and the quarantine, kept under the run."""
    month = _month_of(records)
    counts = {r["source_file"]: r.asDict() for r in R.file_counts(records, month).collect()}
    return account_counted(ctx, name, records, files, counts)


def account_counted(
    ctx: RunContext, name: str, records: DataFrame, files: list[Path], counts: dict[str, dict]
) -> list[dict]:
    """`account` with the per-file counts (`records.file_counts` rows by file) known."""
    month = _month_of(records)
    source_name = next(iter(counts.values()))["source"] if counts else name
    quarantined = sum(int(r[f"rows_{R.QUARANTINED}"]) for r in counts.values())
    out = []
    for path in files:
        row = counts.pop(str(path), None) or {
            "source": source_name,
            "source_file": str(path),
            "rows_read": 0,
            **{f"rows_{s}": 0 for s in R.STATUSES},
        }
        row["is_every_period"] = month is None and name in EVERY_PERIOD_INPUTS
        if month is not None:
            row.setdefault(f"months_{R.LOADED}", [])
            row.setdefault(f"months_{R.QUARANTINED}", [])
        row["checksum_sha256"] = R.sha256_file(path)
        row["byte_count"] = path.stat().st_size
        out.append(row)
    if counts:  # a record whose file was not in the list would be lost from the audit
        raise RuntimeError(f"{name}: records from unlisted files {sorted(counts)[:3]}")
    if quarantined:  # each Spark job costs a fixed fraction of a second: none for nothing
        _write_quarantine(ctx, records, month)
    return out


def _write_quarantine(ctx: RunContext, records: DataFrame, month) -> None:
    amount, currency = _money_of(records, month)
    quarantine = records.filter(F.col("status") == R.QUARANTINED).select(
        "source",
        "source_file",
        "line_number",
        "field",
        "reason",
        "raw_record",
        (month if month is not None else F.lit(None).cast("string")).alias("period_month"),
        amount.alias("amount"),
        currency.alias("currency"),
    )
    path = lake.run_path(ctx.lake_dir, ctx.run_id, "quarantine")
    quarantine.write.mode("append").parquet(path)


def skipped(source: str, files: list[Path], sums: dict[str, str]) -> list[dict]:
    """Accounting rows of files not read again (their rows were counted when first read)."""
    return [
        {
            "source": source,
            "source_file": str(p),
            "rows_read": 0,
            **{f"rows_{s}": 0 for s in R.STATUSES},
            "checksum_sha256": sums.get(str(p)) or R.sha256_file(p),
            "byte_count": p.stat().st_size,
            "is_skipped": True,
        }
        for p in files
    ]


def loaded(records: DataFrame) -> DataFrame:
    return records.filter(F.col("status") == R.LOADED)


def empty_records(spark: SparkSession) -> DataFrame:
    return local_frame(
        spark,
        [],
        "source string, source_file string, line_number long, status string, reason string,"
        " field string, raw_record string",
    )
