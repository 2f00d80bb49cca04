"""AWS Data Exports runs (FOCUS 1.0 with AWS columns, or CUR 2.0) in the layout S3 receives them.

AWS writes each export under its S3 prefix as (AWS user guide, "Understanding export delivery"
and "Data Exports manifest file reference"):

    <prefix>/<export-name>/data/BILLING_PERIOD=YYYY-MM/<export-name>-<n>.csv.gz|.parquet
    <prefix>/<export-name>/metadata/BILLING_PERIOD=YYYY-MM/<export-name>-Manifest.json

with the manifest written after every data file of the execution; the "create new" delivery
puts each execution in a folder of its own below the partition. Placed anywhere under
`billing/focus/<provider>/`, a manifest is one run:
- run id `executionId`, scope the `exportArn` (an export is one account's one query), export
  name from the manifest's file name;
- billing month from `billingPeriod.start`, else the `BILLING_PERIOD=YYYY-MM` folder on the
  manifest's path, else the first data file's BillingPeriodStart;
- its files are `dataFiles` (full S3 URIs), found below the landing by the longest tail of
  their key under the nearest folder above the manifest; one not delivered rejects the run
  (the previous good run of the month stays). AWS manifests carry no byte or row counts, so
  presence is all that can be checked;
- submitted at the manifest's modification time (a synced mirror keeps the store's);
- a CUR 2.0 export (no `BilledCost` column) is named and not read: the ledger reads FOCUS.

Data files below an export's `data/` folder that no manifest lists are left unclaimed (named
by the landing report), never read as a FOCUS folder run: a refresh in progress writes its
data files before its manifest.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema

from inference_ledger import contracts
from inference_ledger.ingest import exports as X
from inference_ledger.ingest import records as R

MANIFEST_SUFFIX = "-Manifest.json"
CUR_2 = "AWS CUR 2.0"
_PARTITION = re.compile(r"^BILLING_PERIOD=(\d{4})-(\d{2})$")


def is_manifest(path: Path) -> bool:
    return path.name.endswith(MANIFEST_SUFFIX) and not path.name.startswith(".")


def manifests(provider_dir: Path) -> list[Path]:
    return sorted(p for p in provider_dir.rglob(f"*{MANIFEST_SUFFIX}") if is_manifest(p))


def is_export_data(folder: Path) -> bool:
    """A folder of an AWS export's `data/BILLING_PERIOD=YYYY-MM/` partition (or below it): its
    files are read only through a manifest, even before the export's first manifest exists."""
    return any(
        _PARTITION.match(f.name) and f.parent.name == "data" for f in [folder, *folder.parents]
    )


def export_data_dirs(manifest_paths: list[Path]) -> set[Path]:
    """The `data/` folders of the exports whose manifests are under `metadata/`: their files
    are read only through a manifest."""
    out = set()
    for m in manifest_paths:
        for folder in m.parents:
            if folder.name == "metadata":
                out.add(folder.parent / "data")
                break
    return out


def data_file(manifest: Path, top: Path, uri: str) -> Path | None:
    """The file a `dataFiles` URI means below `top`: the longest tail of its key that exists
    under the nearest folder above the manifest (the landing may mirror the bucket from any
    prefix). A key that climbs out (`..`) means nothing."""
    key = urlsplit(uri).path if "://" in uri else uri
    parts = [p for p in key.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        return None
    folders = [manifest.parent, *manifest.parent.parents]
    for folder in folders[: folders.index(top) + 1] if top in folders else folders[:1]:
        for j in range(len(parts)):
            candidate = folder.joinpath(*parts[j:])
            if candidate.is_file():
                return candidate
    return None


def _month(path: Path, doc: dict, files: list[Path]) -> date:
    start = (doc.get("billingPeriod") or {}).get("start")
    if start:
        try:
            return X.parse_ts(str(start)).date().replace(day=1)
        except ValueError as exc:
            raise R.InputError(
                f"{path}: invalid AWS export manifest: billingPeriod.start {start!r}"
            ) from exc
    for folder in path.parents:
        m = _PARTITION.match(folder.name)
        if m and 1 <= int(m.group(2)) <= 12:
            return date(int(m.group(1)), int(m.group(2)), 1)
    period = X._period_from_data(files[0]) if files else None
    if period is None:
        raise R.InputError(
            f"{path}: AWS export run without a billing period: no billingPeriod, no"
            " BILLING_PERIOD=YYYY-MM folder on its path and no BillingPeriodStart in its data"
        )
    return period[0].replace(day=1)


def _dataset(doc: dict, files: list[Path]) -> str:
    names = [c.get("name", "") for c in doc.get("columns") or []]
    if not names and files:
        names = list(X._header(files[0]))
    return X.FOCUS_COST if any(n.lower() == "billedcost" for n in names) else CUR_2


def read_manifest(path: Path, top: Path, rule: X.StatusRule) -> X.ExportRun:
    """One AWS Data Exports run (see the module docstring)."""
    try:
        doc = X._load_json(path)
        jsonschema.validate(doc, contracts.load_schema("inputs", "aws_data_exports_manifest"))
    except (json.JSONDecodeError, UnicodeDecodeError, jsonschema.ValidationError) as exc:
        msg = exc.message if isinstance(exc, jsonschema.ValidationError) else str(exc)
        raise R.InputError(f"{path}: invalid AWS export manifest: {msg}") from exc
    found = [(uri, data_file(path, top, uri)) for uri in doc["dataFiles"]]
    files = [p for _, p in found if p is not None]
    missing = [uri for uri, p in found if p is None]
    first = _month(path, doc, files)
    run = X.ExportRun(
        source="billing.focus",
        export_name=path.name[: -len(MANIFEST_SUFFIX)],
        scope_id=doc["exportArn"].strip(),
        billing_month=f"{first:%Y-%m}",
        period_start=first,
        period_end=X._month_after(first),
        run_id=doc["executionId"].strip(),
        submitted_at=datetime.fromtimestamp(path.stat().st_mtime, tz=UTC),
        manifest_path=path,
        blobs=tuple((p, None) for p in files),
        missing_blobs=tuple(missing),
        rejected_reason=(
            f"manifest lists data file(s) not delivered: {', '.join(missing)}" if missing else None
        ),
        manifest_shape="aws-data-exports",
        metadata_files=(path,),
        dataset=_dataset(doc, files),
    )
    return replace(run, dataset_status=X.dataset_status(run, [], rule))
