"""One export run on disk: its folder (Cost Management's layout or the legacy one), its CSV or
Parquet blobs in the run's dialect and its manifest.json."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from inference_ledger.sample.billing_fleet import Line
from inference_ledger.sample.billing_rows import (
    BILLING_ACCOUNT_ID,
    EA_COLUMNS,
    FOCUS_DIALECTS,
    MCA_COLUMNS,
    ea_row,
    faulty_row,
    focus_row,
    mca_row,
    parquet_bytes,
)
from inference_ledger.sample.sink import Sink, csv_bytes, gzip_bytes, json_bytes

SCOPE = f"/providers/Microsoft.Billing/billingAccounts/{BILLING_ACCOUNT_ID}"
EXPORT_NAME = "ea-actualcost-daily"
EXPORT_SUFFIX = "providers/Microsoft.CostManagement/exports"
MAX_ROWS_PER_BLOB = 250


@dataclass(frozen=True)
class Run:
    submitted: str  # ISO UTC
    execution_type: str
    time_frame: str
    through: date  # last usage day restated
    lines: list[Line]


LAYOUTS = ("cost-management", "legacy")
MANIFEST_SHAPES = ("2024-04-01", "2023-07-01-preview")
# The export's root folder (deliveryConfig.rootFolderPath) in the storage container that
# billing/azure (billing/focus/azure) mirrors: blob names in manifests start with it.
ROOT_FOLDER = "exports"


def _run_folder(top: str, run: Run, run_id: str, first: date, last: date, layout: str) -> str:
    """Cost Management's layout `<root>/<export>/<YYYYMMDD-YYYYMMDD>/<YYYYMMDDHHMM>/<run-guid>`,
    or the legacy one a level less and without the root: `<export>/<period>/<run-guid>`."""
    period = f"{first:%Y%m%d}-{last:%Y%m%d}"
    if layout == "legacy":
        return f"{top}/{EXPORT_NAME}/{period}/{run_id}"
    export_time = run.submitted[:16].replace("-", "").replace("T", "").replace(":", "")
    return f"{top}/{ROOT_FOLDER}/{EXPORT_NAME}/{period}/{export_time}/{run_id}"


def _manifest(run: Run, run_id: str, first: date, blobs: list[dict], rows: int, opts: dict) -> dict:
    """The run's manifest in the shape asked for. 2024-04-01 totals its blobs; the
    2023-07-01-preview shape has neither totals nor row counts (blobs carry byteCount only)."""
    legacy, focus = opts["layout"] == "legacy", opts["dialect"] in FOCUS_DIALECTS
    doc = {
        "exportConfig": {
            "exportName": EXPORT_NAME,
            # The export's own resource id (its scope is what precedes /providers/...).
            "resourceId": SCOPE if legacy else f"{SCOPE}/{EXPORT_SUFFIX}/{EXPORT_NAME}",
            "dataVersion": FOCUS_DIALECTS[opts["dialect"]][1] if focus else "2021-10-01",
            "apiVersion": "2023-07-01-preview",
            "type": "FocusCost" if focus else "ActualCost",
            "timeFrame": run.time_frame,
            "granularity": "Daily",
        },
        "deliveryConfig": {
            "partitionData": True,
            "dataOverwriteBehavior": "CreateNewReport",
            "fileFormat": "Parquet" if opts["parquet"] else "Csv",
            "compressionMode": "gzip" if opts["gz"] else "None",
            "rootFolderPath": f"billing/azure/{EXPORT_NAME}" if legacy else ROOT_FOLDER,
        },
        "runInfo": {
            "executionType": run.execution_type,
            "submittedTime": run.submitted,
            "runId": run_id,
            "startDate": f"{first:%Y-%m-%d}T00:00:00Z",
            "endDate": f"{run.through:%Y-%m-%d}T00:00:00Z",
        },
        "blobs": blobs,
    }
    if opts["manifest_shape"] == "2023-07-01-preview":
        for b in blobs:
            del b["dataRowCount"]
        return doc
    totals = {
        "byteCount": sum(b["byteCount"] for b in blobs),
        "blobCount": len(blobs),
        "dataRowCount": rows,
    }
    return {"manifestVersion": "2024-04-01", **totals, **doc}


def write_run(
    sink: Sink,
    run: Run,
    run_id: str,
    first: date,
    last: date,
    gz: bool,
    dialect: str = "ea",
    bad_rows: int = 0,
    overstate_rows: int = 0,
    parquet: bool = False,
    layout: str = "cost-management",
    manifest_shape: str = "2024-04-01",
) -> int:
    """One export run in the given dialect: `ea` and `mca` under billing/azure, `focus` (1.2,
    as Azure's FOCUS export writes it, with a manifest) under billing/focus/azure; in Cost
    Management's `layout` (or the `legacy` one) with a manifest of `manifest_shape`.
    `bad_rows` extra rows with unparseable costs (quarantined; totals unaffected);
    `overstate_rows` makes the manifest claim more than delivered (the run is rejected): more
    rows, or in the preview shape (no row counts) as many more bytes."""
    top = "billing/focus/azure" if dialect in FOCUS_DIALECTS else "billing/azure"
    folder = _run_folder(top, run, run_id, first, last, layout)
    rows = [ea_row(ln, first, last) for ln in run.lines]
    faults = ("1,234.56", "NaN", "12.34.56", "")
    rows += [
        faulty_row(rows[i % len(rows)], faults[i % len(faults)]) for i in range(bad_rows) if rows
    ]
    lines = list(run.lines) + [run.lines[i % len(run.lines)] for i in range(bad_rows) if run.lines]
    header = EA_COLUMNS
    if dialect == "mca":
        rows, header = [mca_row(r) for r in rows], MCA_COLUMNS
    elif dialect in FOCUS_DIALECTS:
        rows = [focus_row(ln, r, first, last, dialect) for ln, r in zip(lines, rows, strict=True)]
        header = FOCUS_DIALECTS[dialect][0]
    chunks = [rows[i : i + MAX_ROWS_PER_BLOB] for i in range(0, len(rows), MAX_ROWS_PER_BLOB)]
    blobs = []
    for n, chunk in enumerate(chunks or [[]]):
        # Legacy names are per run and relative; Cost Management's are container paths.
        name = f"part_{n + 1}_{run_id[:8]}" if layout == "legacy" else f"part_{n}_0001"
        if parquet:
            name += ".snappy.parquet"
            size = sink.write(f"{folder}/{name}", parquet_bytes(header, chunk))
        else:
            name += ".csv" + (".gz" if gz else "")
            data = csv_bytes(header, chunk)
            size = sink.write(f"{folder}/{name}", gzip_bytes(data) if gz else data)
        blob_name = name if layout == "legacy" else f"{folder.removeprefix(top + '/')}/{name}"
        blobs.append({"blobName": blob_name, "byteCount": size, "dataRowCount": len(chunk)})
    blobs[-1]["dataRowCount"] += overstate_rows
    if manifest_shape == "2023-07-01-preview":
        blobs[-1]["byteCount"] += overstate_rows
    opts = {"layout": layout, "dialect": dialect, "parquet": parquet, "gz": gz,
            "manifest_shape": manifest_shape}  # fmt: skip
    manifest = _manifest(run, run_id, first, blobs, len(rows) + overstate_rows, opts)
    sink.write(f"{folder}/manifest.json", json_bytes(manifest, indent=2))
    return len(rows)
