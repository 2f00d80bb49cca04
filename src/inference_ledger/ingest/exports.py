"""Billing export runs: discovery, manifests, and which run of a (scope, month) counts.

Discovery (DESIGN.md "Inputs"), by content, never by folder position:
- `billing/azure/**/manifest.json` (or a legacy `_manifest.json`) at any depth: Cost Management
  writes `<root>/<export>/<YYYYMMDD-YYYYMMDD>/<YYYYMMDDHHMM>/<run-guid>/manifest.json` + blobs
  `part_<n>_<m>.csv[.gz]|.parquet`; older exports one level less. Scope, export, billing month,
  period, run id, submitted time and data version come from the manifest (`exportConfig`,
  `runInfo`), as FinOps hubs read them since 0.4. Blob names are container paths
  (`<root>/<export>/.../part_0_0001.csv.gz`) and are resolved against the manifest's folder.
- `billing/focus/<provider>/**`: a folder with a manifest (same shapes) is one run; a folder of
  data files with no manifest in it or above it is one run whose submitted time is its newest
  file's modification time and whose billing period is a `YYYYMMDD-YYYYMMDD` folder on its path,
  else the first row's BillingPeriodStart / BillingPeriodEnd. AWS Data Exports runs
  (`<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json` listing the files under
  `<export>/data/`) are read by their manifest: `aws_exports`.

Two manifest shapes: `manifestVersion` `2024-04-01` (top-level byteCount / blobCount /
dataRowCount, per blob blobName / byteCount / dataRowCount) and `2023-07-01-preview` (no
manifestVersion; blobs with blobName and byteCount only). Row counts are verified where the
manifest has them, byte counts where it has only those: a run whose files disagree (a missing
blob, another count) is rejected with the reason and does not replace the previous good run.

Exports are month-to-date: the newest *complete* (not rejected) run of a (scope, billing month)
replaces the older ones. Each run is `final` or `provisional` by the rule in
config/billing_exports.yaml (FOCUS 1.3 Recency metadata, where present, has its say).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

from inference_ledger.ingest import records as R

MANIFEST_NAMES = ("manifest.json", "_manifest.json")  # the first wins in a folder with both
PROVISIONAL, FINAL = "provisional", "final"
STATUS_RULE_FILE = Path(__file__).resolve().parent.parent / "config" / "billing_exports.yaml"

# Cost Management export types (exportConfig.type) whose rows are invoice figures, and the
# preference between them when one scope exports a month both ways: the FOCUS export (billed
# and effective cost on every line) wins over the actual-cost one, never added to it.
ACTUAL_COST, FOCUS_COST, AMORTIZED_COST = "ActualCost", "FocusCost", "AmortizedCost"
CONTRACT_COMMITMENT = "FOCUS Contract Commitment"
READ_DATASETS = {"actualcost": ACTUAL_COST, "usage": ACTUAL_COST, "focuscost": FOCUS_COST}
DATASET_RANK = {FOCUS_COST: 0, ACTUAL_COST: 1}


def dataset_name(export_type: str) -> str:
    return READ_DATASETS.get(export_type.strip().lower(), export_type.strip())


def dataset_not_read(dataset: str) -> str | None:
    """None for a dataset the ledger reads, else why its files are not read."""
    if dataset in DATASET_RANK or dataset == CONTRACT_COMMITMENT:
        return None  # (Contract Commitment: ingest/contract_commitments.py, not as cost rows)
    if dataset == "AWS CUR 2.0":
        return (
            "an AWS CUR 2.0 export: its columns are not FOCUS; the ledger reads the FOCUS 1.0"
            " export of AWS Data Exports -- not read"
        )
    if dataset.lower() == AMORTIZED_COST.lower():
        return (
            "an AmortizedCost export: amortized figures spread purchases over their term and"
            " are not the invoice; the ledger reads ActualCost or FocusCost exports (BilledCost)"
            " -- not read"
        )
    return (
        f"a {dataset or 'untyped'} export is not cost data (the ledger reads ActualCost and"
        " FocusCost exports) -- not read"
    )


@dataclass(frozen=True)
class StatusRule:
    """config/billing_exports.yaml: hours after a month's end before its run can be final."""

    final_after_hours: float
    final_after_hours_with_recency: float

    @classmethod
    def load(cls, path: Path | None = None) -> StatusRule:
        path = path or STATUS_RULE_FILE
        doc = yaml.safe_load(path.read_text()) or {}
        try:
            return cls(
                float(doc["final_after_hours"]), float(doc["final_after_hours_with_recency"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: needs numeric final_after_hours(_with_recency)") from exc


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
    dataset_status: str = PROVISIONAL
    covered_through: date | None = None  # last day the run restates (None: the whole period)
    manifest_shape: str | None = None  # 2024-04-01 | 2023-07-01-preview | None (no manifest)
    metadata_files: tuple[Path, ...] = ()  # manifests and FOCUS metadata the run read
    dataset: str = FOCUS_COST  # the export's exportConfig.type (a FOCUS folder run: FocusCost)

    @property
    def not_read_reason(self) -> str | None:
        """Why the run's files are named but not read: it is not actual-cost data."""
        return dataset_not_read(self.dataset)

    @property
    def claimed_files(self) -> tuple[Path, ...]:
        return (*self.metadata_files, *(p for p, _ in self.blobs))


def parse_ts(value: str) -> datetime:
    """ISO date-times as producers write them: `Z` or `z`, 7 fraction digits, a 1-digit hour
    (FOCUS's own Recency example writes `2025-01-27T0:00:00z`), no zone = UTC."""
    text = value.strip().replace("z", "Z")
    text = re.sub(r"T(\d)(?=:)", r"T0\1", text)
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _month_after(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def _load_json(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8-sig"))


def blob_path(run_dir: Path, name: str) -> Path | None:
    """The file a manifest's blobName means. Blob names are container paths
    (`<root>/<export>/<period>/<time>/<guid>/part_0_0001.csv`) whose leading part the landing
    may or may not mirror: the longest run of the name's folders that the manifest's own
    folder path ends with anchors it; what follows is below the manifest's folder. Names that
    climb out (`..`) resolve to nothing."""
    parts = [p.strip() for p in name.replace("\\", "/").split("/") if p.strip()]
    if not parts or any(p in (".", "..") for p in parts):
        return None
    *dirs, file = parts
    here = run_dir.parts
    candidates = []
    for j in range(len(dirs) + 1):
        for k in range(j, len(dirs) + 1):
            anchor = dirs[j:k]
            if anchor and tuple(here[-len(anchor) :]) != tuple(anchor):
                continue
            candidates.append((-len(anchor), j, run_dir.joinpath(*dirs[k:], file)))
    return next((p for _, _, p in sorted(candidates) if p.is_file()), None)


# ---------------------------------------------------------------- FOCUS 1.3 metadata


def _recency_objects(doc: object) -> list[dict]:
    """FOCUS 1.3 Recency objects in a metadata document, a Recency collection or one object."""
    if isinstance(doc, list):
        return [o for d in doc for o in _recency_objects(d)]
    if not isinstance(doc, dict):
        return []
    if "Recency" in doc:
        return _recency_objects(doc["Recency"])
    return [doc] if {"TimeSectors", "DatasetInstanceComplete"} & set(doc) else []


def _focus_version(doc: object) -> str | None:
    if not isinstance(doc, dict):
        return None
    schema = doc.get("Schema")
    schemas = schema if isinstance(schema, list) else [schema]
    found = [doc.get("FocusVersion")] + [
        s.get("FocusVersion") for s in schemas if isinstance(s, dict)
    ]
    return next((str(v) for v in found if v), None)


def _run_metadata(
    run_dir: Path, manifest: dict | None
) -> tuple[list[dict], list[Path], str | None]:
    """(Recency objects, metadata files read, FocusVersion) of a run folder: the manifest's own
    keys and any other JSON file in the folder holding FOCUS metadata. JSON that is not FOCUS
    metadata is left unclaimed (reported by name)."""
    recency = _recency_objects(manifest) if manifest else []
    version = _focus_version(manifest)
    files = []
    for p in sorted(run_dir.glob("*.json")):
        if p.name in MANIFEST_NAMES or p.name.startswith("."):
            continue
        try:
            doc = _load_json(p)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        found, v = _recency_objects(doc), _focus_version(doc)
        if found or v:
            recency += found
            version = version or v
            files.append(p)
    return recency, files, version


def _sectors_complete(sectors: list, start: datetime, end: datetime) -> bool:
    """The sectors overlapping [start, end) are all complete and leave no gap in it."""
    spans = []
    for s in sectors:
        try:
            a, b = parse_ts(str(s["TimeSectorStart"])), parse_ts(str(s["TimeSectorEnd"]))
        except (KeyError, TypeError, ValueError):
            return False  # a sector we cannot place proves nothing
        if b > start and a < end:
            if s.get("TimeSectorComplete") is not True:
                return False
            spans.append((a, b))
    reached = start
    for a, b in sorted(spans):
        if a > reached:
            return False
        reached = max(reached, b)
    return reached >= end


def _recency_says(recency: list[dict], start: datetime, end: datetime) -> bool | None:
    """True / False where Recency metadata speaks about the month, None where there is none."""
    verdicts = []
    for obj in recency:
        if "DatasetInstanceComplete" in obj:
            verdicts.append(obj["DatasetInstanceComplete"] is True)
        if isinstance(obj.get("TimeSectors"), list):
            verdicts.append(_sectors_complete(obj["TimeSectors"], start, end))
    return all(verdicts) if verdicts else None


def dataset_status(run: ExportRun, recency: list[dict], rule: StatusRule) -> str:
    """`final` when the run is complete for its whole billing month (config/billing_exports.yaml),
    else `provisional`."""
    first = date.fromisoformat(f"{run.billing_month}-01")
    month_end = _month_after(first)
    start = datetime(first.year, first.month, 1, tzinfo=UTC)
    end = datetime(month_end.year, month_end.month, 1, tzinfo=UTC)
    if run.covered_through is not None and run.covered_through < month_end - timedelta(days=1):
        return PROVISIONAL  # month to date
    says = _recency_says(recency, start, end)
    hours = rule.final_after_hours if says is None else rule.final_after_hours_with_recency
    if says is False or run.submitted_at < end + timedelta(hours=hours):
        return PROVISIONAL
    return FINAL


# ---------------------------------------------------------------- discovery


def _period_from_data(path: Path) -> tuple[date, date] | None:
    """BillingPeriodStart / BillingPeriodEnd (exclusive) of a FOCUS file's first row."""
    if path.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        names = [
            n for n in ("BillingPeriodStart", "BillingPeriodEnd") if n in pf.schema_arrow.names
        ]
        if len(names) < 2 or pf.metadata.num_rows == 0:
            return None
        row = pf.read_row_group(0, columns=names).slice(0, 1).to_pylist()[0]
        values = [str(row[n]) for n in names]
    else:
        R.check_utf8(path)
        with R._open_text(path) as fh:
            reader = csv.DictReader(fh)
            row = next(reader, None)
        if not row or not row.get("BillingPeriodStart") or not row.get("BillingPeriodEnd"):
            return None
        values = [row["BillingPeriodStart"], row["BillingPeriodEnd"]]
    try:
        first, end = (parse_ts(v.replace(" ", "T", 1)).date() for v in values)
    except ValueError:
        return None
    return first, end


def _header(path: Path) -> tuple[str, ...]:
    """A data file's column names (its first CSV row, or its Parquet schema)."""
    if path.name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return tuple(pq.read_schema(path).names)
        except (pa.ArrowException, OSError):
            return ()  # read (and reported, naming the file) with the run's other files
    try:
        with R._open_text(path) as fh:
            return tuple(h.strip().lstrip("\ufeff") for h in next(csv.reader(fh), []))
    except (OSError, EOFError, UnicodeDecodeError):
        return ()  # read (and reported) with the run's other files


def discover_runs(landing: Path, rule: StatusRule | None = None) -> list[ExportRun]:
    """Every export run under billing/azure (by manifest, any depth) and billing/focus."""
    # They build on this module's ExportRun (as aws_exports does): imported when discovery runs.
    from inference_ledger.ingest.export_discovery import focus_runs, manifests_in, without_copies
    from inference_ledger.ingest.export_manifests import read_manifest

    rule = rule or StatusRule.load()
    azure = landing / "billing" / "azure"
    runs = (
        [read_manifest(p, "billing.azure", rule) for p in manifests_in(azure)]
        if azure.is_dir()
        else []
    )
    return without_copies(runs + focus_runs(landing / "billing" / "focus", rule))


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
