"""One export run from its manifest: Cost Management's two manifest shapes, the blobs they
list checked against the files delivered (exports.py describes both)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import jsonschema

from inference_ledger import contracts
from inference_ledger.ingest import exports as X
from inference_ledger.ingest import records as R

# exportConfig.resourceId is the export's own id: `<scope>/providers/Microsoft.CostManagement/
# exports/<name>`; the scope is what precedes it (some manifests give the scope itself).
_EXPORT_ID = re.compile(r"/providers/Microsoft\.CostManagement/exports/[^/]+/?$", re.IGNORECASE)
# A run folder named by its export time (`<YYYYMMDDHHMM>`): its submitted time when the
# manifest gives none.
_EXPORT_TIME_FOLDER = re.compile(r"^(\d{12})$")


def _run_time(path: Path, info: dict, key: str) -> datetime:
    try:
        return X.parse_ts(info[key])
    except ValueError as exc:
        raise R.InputError(
            f"{path}: invalid export manifest: runInfo.{key} {info[key]!r} is not a date-time"
        ) from exc


def _through(start: date, end: datetime) -> date:
    """The last day a run restates. runInfo.endDate is that day at 00:00 in Cost Management's
    manifests (`2024-01-31T00:00:00` for January); 00:00 on the 1st of a later month is read
    as an exclusive end."""
    day = end.date()
    if day > start and day.day == 1 and (end.hour, end.minute, end.second) == (0, 0, 0):
        day -= timedelta(days=1)
    return max(day, start)


def _blob_checks(run_dir: Path, doc: dict) -> tuple[list, list[str], list[str]]:
    """(blobs with declared rows, missing blob names, byte-count mismatches)."""
    blobs, missing, wrong = [], [], []
    for blob in doc["blobs"]:
        name = blob["blobName"]
        found = X.blob_path(run_dir, name)
        if found is None:
            missing.append(name.strip())
            continue
        rows = blob.get("dataRowCount")
        if rows is None and blob.get("byteCount") is not None:
            size = found.stat().st_size
            if size != int(blob["byteCount"]):
                wrong.append(
                    f"{found.name}: manifest says {blob['byteCount']} bytes, file has {size}"
                )
        blobs.append((found, None if rows is None else int(rows)))
    return blobs, missing, wrong


def _totals_check(doc: dict) -> list[str]:
    """2024-04-01 manifests also total their blobs: a total that disagrees is a torn manifest.
    A manifest whose blobs carry no counts was written by hand (FinOps hubs' template, whose
    `blobCount: 1, dataRowCount: 1` are placeholders): only its blobs' presence is checked."""
    wrong = []
    if "manifestVersion" not in doc and not any(
        "byteCount" in b or "dataRowCount" in b for b in doc["blobs"]
    ):
        return wrong
    if "blobCount" in doc and int(doc["blobCount"]) != len(doc["blobs"]):
        wrong.append(f"manifest says blobCount {doc['blobCount']}, lists {len(doc['blobs'])} blobs")
    declared = [b.get("dataRowCount") for b in doc["blobs"]]
    if "dataRowCount" in doc and None not in declared and int(doc["dataRowCount"]) != sum(declared):
        wrong.append(f"manifest says dataRowCount {doc['dataRowCount']}, its blobs {sum(declared)}")
    return wrong


def read_manifest(
    path: Path, source: str = "billing.azure", rule: X.StatusRule | None = None
) -> X.ExportRun:
    try:
        doc = X._load_json(path)
        jsonschema.validate(doc, contracts.load_schema("inputs", "azure_export_manifest"))
        info, config = doc["runInfo"], doc["exportConfig"]
        start = _run_time(path, info, "startDate").date()
        # A manifest written by hand (FinOps hubs' template for re-ingesting files) gives the
        # month's start only: the run restates the whole month, submitted when written.
        through = (
            _through(start, _run_time(path, info, "endDate"))
            if info.get("endDate")
            else X._month_after(start) - timedelta(days=1)
        )
        submitted = (
            _run_time(path, info, "submittedTime")
            if info.get("submittedTime")
            else _submitted_from_path(path)
        )
    except (json.JSONDecodeError, UnicodeDecodeError, jsonschema.ValidationError) as exc:
        msg = exc.message if isinstance(exc, jsonschema.ValidationError) else str(exc)
        raise R.InputError(f"{path}: invalid export manifest: {msg}") from exc
    run_dir = path.parent
    blobs, missing, wrong = _blob_checks(run_dir, doc)
    reasons = _totals_check(doc) + wrong
    if missing:
        reasons.insert(0, f"manifest lists blob(s) not delivered: {', '.join(missing)}")
    recency, meta_files, focus_version = X._run_metadata(run_dir, doc)
    run = X.ExportRun(
        source=source,
        export_name=config["exportName"],
        scope_id=_EXPORT_ID.sub("", config["resourceId"].strip()) or config["resourceId"],
        billing_month=f"{start:%Y-%m}",
        period_start=start,
        period_end=X._month_after(through),
        run_id=info["runId"],
        submitted_at=submitted,
        manifest_path=path,
        blobs=tuple(blobs),
        missing_blobs=tuple(missing),
        rejected_reason="; ".join(reasons) or None,
        data_version=config.get("dataVersion") or focus_version,
        covered_through=through,
        manifest_shape=doc.get("manifestVersion") or "2023-07-01-preview",
        metadata_files=(path, *meta_files),
        dataset=X.FOCUS_COST if source == "billing.focus" else X.dataset_name(config["type"]),
    )
    return replace(run, dataset_status=X.dataset_status(run, recency, rule or X.StatusRule.load()))


def _submitted_from_path(path: Path) -> datetime:
    """A manifest without runInfo.submittedTime: the export-time folder Cost Management puts
    runs in (`.../<YYYYMMDDHHMM>/<run-guid>/manifest.json`), else the manifest's own time."""
    for folder in path.parents:
        if _EXPORT_TIME_FOLDER.match(folder.name):
            try:
                return datetime.strptime(folder.name, "%Y%m%d%H%M").replace(tzinfo=UTC)
            except ValueError:
                break
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
