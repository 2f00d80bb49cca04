"""Billing export runs: discovery, manifests, and which run of a (scope, month) counts.

Layout (DESIGN.md "Inputs"):
- `billing/azure/<export>/<YYYYMMDD-YYYYMMDD>/<run-id>/manifest.json` + blobs (Azure Cost
  Management, EA or MCA, CSV / gzip CSV / Parquet);
- `billing/focus/<provider>/<YYYYMMDD-YYYYMMDD>/<run-id>/` (FOCUS 1.0-1.2, any cloud), with a
  `manifest.json` when the provider writes one; without it every data file in the folder is
  a blob and the run's submitted time is the newest file's modification time.

Exports are month-to-date: the newest *complete* run of a (scope, billing month) replaces the
older ones. A run whose files disagree with its manifest (a missing blob, a different row
count) is rejected with the reason and does not replace the previous good run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import jsonschema
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger import contracts
from inference_ledger.ingest import records as R

DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".snappy.parquet", ".gz.parquet")

RUN_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType(), False),
        T.StructField("export_name", T.StringType(), False),
        T.StructField("scope_id", T.StringType(), False),
        T.StructField("billing_month", T.StringType(), False),
        T.StructField("period_start", T.DateType(), False),
        T.StructField("period_end", T.DateType(), False),  # exclusive
        T.StructField("run_id", T.StringType(), False),
        T.StructField("submitted_at", T.TimestampType(), False),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("rejected_reason", T.StringType(), True),
    ]
)


@dataclass(frozen=True)
class ExportRun:
    source: str  # billing.azure | billing.focus
    export_name: str
    scope_id: str
    billing_month: str
    period_start: date
    period_end: date  # exclusive
    run_id: str
    submitted_at: datetime
    manifest_path: Path | None
    blobs: tuple[tuple[Path, int | None], ...]  # (file, rows the manifest declares)
    missing_blobs: tuple[str, ...] = ()
    rejected_reason: str | None = None
    data_version: str | None = None


def _parse_ts(value: str) -> datetime:
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _period(run_dir: Path, where: Path) -> tuple[date, date]:
    folder = run_dir.parent.name  # YYYYMMDD-YYYYMMDD, the billing period
    try:
        first, last = (datetime.strptime(p, "%Y%m%d").date() for p in folder.split("-"))
    except ValueError as exc:
        raise R.InputError(f"{where}: folder {folder!r} is not YYYYMMDD-YYYYMMDD") from exc
    return first, date.fromordinal(last.toordinal() + 1)


def _is_data_file(path: Path) -> bool:
    return path.is_file() and path.name.endswith(DATA_SUFFIXES) and not path.name.startswith(".")


def read_manifest(path: Path, source: str = "billing.azure") -> ExportRun:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
        jsonschema.validate(doc, contracts.load_schema("inputs", "azure_export_manifest"))
    except (json.JSONDecodeError, UnicodeDecodeError, jsonschema.ValidationError) as exc:
        msg = exc.message if isinstance(exc, jsonschema.ValidationError) else str(exc)
        raise R.InputError(f"{path}: invalid export manifest: {msg}") from exc
    run_dir = path.parent
    first, end = _period(run_dir, path)
    blobs, missing = [], []
    for blob in doc["blobs"]:
        name = blob["blobName"]
        candidates = [run_dir / name, run_dir / Path(name).name]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            missing.append(name)
        else:
            blobs.append((found, int(blob["dataRowCount"])))
    info = doc["runInfo"]
    reason = f"manifest lists blob(s) not delivered: {', '.join(missing)}" if missing else None
    return ExportRun(
        source=source,
        export_name=doc["exportConfig"]["exportName"],
        scope_id=doc["exportConfig"]["resourceId"],
        billing_month=f"{first:%Y-%m}",
        period_start=first,
        period_end=end,
        run_id=info["runId"],
        submitted_at=_parse_ts(info["submittedTime"]),
        manifest_path=path,
        blobs=tuple(blobs),
        missing_blobs=tuple(missing),
        rejected_reason=reason,
        data_version=doc["exportConfig"].get("dataVersion"),
    )


def _folder_run(run_dir: Path, provider: str) -> ExportRun | None:
    files = sorted(p for p in run_dir.iterdir() if _is_data_file(p))
    if not files:
        return None
    first, end = _period(run_dir, run_dir)
    newest = max(p.stat().st_mtime for p in files)
    return ExportRun(
        source="billing.focus",
        export_name=provider,
        scope_id=f"focus:{provider}",
        billing_month=f"{first:%Y-%m}",
        period_start=first,
        period_end=end,
        run_id=run_dir.name,
        submitted_at=datetime.fromtimestamp(newest, tz=UTC),
        manifest_path=None,
        blobs=tuple((p, None) for p in files),
    )


def discover_runs(landing: Path) -> list[ExportRun]:
    """Every export run under billing/azure and billing/focus."""
    runs = [
        read_manifest(p, "billing.azure")
        for p in sorted((landing / "billing" / "azure").glob("*/*/*/manifest.json"))
    ]
    for run_dir in sorted((landing / "billing" / "focus").glob("*/*/*")):
        if not run_dir.is_dir():
            continue
        manifest = run_dir / "manifest.json"
        if manifest.is_file():
            runs.append(read_manifest(manifest, "billing.focus"))
        else:
            run = _folder_run(run_dir, run_dir.parent.parent.name)
            if run is not None:
                runs.append(run)
    return runs


def with_row_count_check(runs: list[ExportRun], rows_per_file: dict[str, int]) -> list[ExportRun]:
    """Reject runs whose blobs disagree with the manifest's dataRowCount."""
    out = []
    for run in runs:
        wrong = [
            f"{path.name}: manifest says {declared} data rows, file has {rows_per_file.get(str(path), 0)}"
            for path, declared in run.blobs
            if declared is not None and rows_per_file.get(str(path), 0) != declared
        ]
        if wrong and not run.rejected_reason:
            run = replace(run, rejected_reason="; ".join(wrong))
        out.append(run)
    return out


def runs_frame(spark: SparkSession, runs: list[ExportRun]) -> DataFrame:
    rows = [
        (
            r.source,
            r.export_name,
            r.scope_id,
            r.billing_month,
            r.period_start,
            r.period_end,
            r.run_id,
            r.submitted_at.astimezone(UTC).replace(tzinfo=None),
            str(path),
            r.rejected_reason,
        )
        for r in runs
        for path, _ in r.blobs
    ]
    return spark.createDataFrame(rows, RUN_SCHEMA)


def with_current_run(runs: DataFrame) -> DataFrame:
    """Flag `is_current_run`: the newest submitted, not rejected run of each (scope, month)."""
    per_run = runs.select(
        "scope_id", "billing_month", "run_id", "submitted_at", "rejected_reason"
    ).distinct()
    ok = per_run.filter(F.col("rejected_reason").isNull())
    ranked = ok.withColumn(
        "_rank",
        F.row_number().over(
            Window.partitionBy("scope_id", "billing_month").orderBy(
                F.col("submitted_at").desc(), F.col("run_id").desc()
            )
        ),
    )
    # Run ids are unique only within a scope and month: FOCUS folder runs are named by their
    # folder (`run-1`, a date), so a join on run_id alone multiplied rows across scopes.
    key = ["scope_id", "billing_month", "run_id"]
    current = ranked.select(*key, (F.col("_rank") == 1).alias("is_current_run"))
    return runs.join(current, key, "left").withColumn(
        "is_current_run", F.coalesce(F.col("is_current_run"), F.lit(False))
    )
