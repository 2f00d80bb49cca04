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

import jsonschema
import yaml
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger import contracts
from inference_ledger.ingest import records as R

DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".snappy.parquet", ".gz.parquet")
MANIFEST_NAMES = ("manifest.json", "_manifest.json")  # the first wins in a folder with both
PROVISIONAL, FINAL = "provisional", "final"
STATUS_RULE_FILE = Path(__file__).resolve().parent.parent / "config" / "billing_exports.yaml"
_PERIOD_FOLDER = re.compile(r"^(\d{8})-(\d{8})$")
# exportConfig.resourceId is the export's own id: `<scope>/providers/Microsoft.CostManagement/
# exports/<name>`; the scope is what precedes it (some manifests give the scope itself).
_EXPORT_ID = re.compile(r"/providers/Microsoft\.CostManagement/exports/[^/]+/?$", re.IGNORECASE)

# Cost Management export types (exportConfig.type) whose rows are invoice figures, and the
# preference between them when one scope exports a month both ways: the FOCUS export (billed
# and effective cost on every line) wins over the actual-cost one, never added to it.
ACTUAL_COST, FOCUS_COST, AMORTIZED_COST = "ActualCost", "FocusCost", "AmortizedCost"
CONTRACT_COMMITMENT = "FOCUS Contract Commitment"
READ_DATASETS = {"actualcost": ACTUAL_COST, "usage": ACTUAL_COST, "focuscost": FOCUS_COST}
DATASET_RANK = {FOCUS_COST: 0, ACTUAL_COST: 1}
# A run folder named by its export time (`<YYYYMMDDHHMM>`): its submitted time when the
# manifest gives none.
_EXPORT_TIME_FOLDER = re.compile(r"^(\d{12})$")


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
        # The manifest's exportConfig.dataVersion (or FOCUS metadata FocusVersion); None when
        # the delivery does not say.
        T.StructField("data_version", T.StringType(), True),
        T.StructField("dataset_status", T.StringType(), False),  # provisional | final
        T.StructField("dataset", T.StringType(), False),  # ActualCost | FocusCost
    ]
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


def _run_time(path: Path, info: dict, key: str) -> datetime:
    try:
        return parse_ts(info[key])
    except ValueError as exc:
        raise R.InputError(
            f"{path}: invalid export manifest: runInfo.{key} {info[key]!r} is not a date-time"
        ) from exc


def _month_after(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def _load_json(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8-sig"))


def _is_data_file(path: Path) -> bool:
    return path.is_file() and path.name.endswith(DATA_SUFFIXES) and not path.name.startswith(".")


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
        found = blob_path(run_dir, name)
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
    path: Path, source: str = "billing.azure", rule: StatusRule | None = None
) -> ExportRun:
    try:
        doc = _load_json(path)
        jsonschema.validate(doc, contracts.load_schema("inputs", "azure_export_manifest"))
        info, config = doc["runInfo"], doc["exportConfig"]
        start = _run_time(path, info, "startDate").date()
        # A manifest written by hand (FinOps hubs' template for re-ingesting files) gives the
        # month's start only: the run restates the whole month, submitted when written.
        through = (
            _through(start, _run_time(path, info, "endDate"))
            if info.get("endDate")
            else _month_after(start) - timedelta(days=1)
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
    recency, meta_files, focus_version = _run_metadata(run_dir, doc)
    run = ExportRun(
        source=source,
        export_name=config["exportName"],
        scope_id=_EXPORT_ID.sub("", config["resourceId"].strip()) or config["resourceId"],
        billing_month=f"{start:%Y-%m}",
        period_start=start,
        period_end=_month_after(through),
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
        dataset=FOCUS_COST if source == "billing.focus" else dataset_name(config["type"]),
    )
    return replace(run, dataset_status=dataset_status(run, recency, rule or StatusRule.load()))


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


def _manifests(root: Path) -> list[Path]:
    """One manifest per folder, at any depth (manifest.json before a legacy _manifest.json)."""
    by_folder: dict[Path, Path] = {}
    for name in reversed(MANIFEST_NAMES):
        for p in root.rglob(name):
            if p.is_file():
                by_folder[p.parent] = p
    return [by_folder[k] for k in sorted(by_folder)]


def _period_from_path(run_dir: Path, top: Path) -> tuple[date, date] | None:
    for folder in [run_dir, *run_dir.parents]:
        if folder == top:
            return None
        m = _PERIOD_FOLDER.match(folder.name)
        if m:
            try:
                first, last = (datetime.strptime(g, "%Y%m%d").date() for g in m.groups())
            except ValueError:
                continue
            return first, last + timedelta(days=1)
    return None


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


def _other_dataset(path: Path) -> str | None:
    """The FOCUS dataset a data file holds when it is not cost and usage rows: FOCUS 1.3's
    Contract Commitment dataset (ContractCommitmentId, no BilledCost) may be delivered beside
    the cost files."""
    names = {h.lower() for h in _header(path)}
    if "contractcommitmentid" in names and "billedcost" not in names:
        return CONTRACT_COMMITMENT
    return None


def _other_datasets_run(run: ExportRun, files: list[Path]) -> ExportRun:
    """The files of another FOCUS dataset in a run's folder, as a run of their own (read by
    ingest/contract_commitments.py, never as cost rows)."""
    return replace(
        run,
        run_id=f"{run.run_id}:{CONTRACT_COMMITMENT}",
        blobs=tuple((p, None) for p in files),
        metadata_files=(),
        dataset=CONTRACT_COMMITMENT,
    )


def _folder_runs(run_dir: Path, provider_dir: Path, rule: StatusRule) -> list[ExportRun]:
    files = sorted(p for p in run_dir.iterdir() if _is_data_file(p))
    others = [p for p in files if _other_dataset(p)]
    cost = [p for p in files if p not in others]
    if not cost:
        if not others:
            return []
        # Its billing period (if any) only labels it.
        first, end = _period_from_path(run_dir, provider_dir) or (date.min, date.min)
        only = ExportRun(
            source="billing.focus",
            export_name=provider_dir.name,
            scope_id=f"focus:{provider_dir.name}",
            billing_month=f"{first:%Y-%m}" if first != date.min else "",
            period_start=first,
            period_end=end,
            run_id=run_dir.name,
            submitted_at=datetime.fromtimestamp(others[0].stat().st_mtime, tz=UTC),
            manifest_path=None,
            blobs=(),
        )
        return [_other_datasets_run(only, others)]
    run = _folder_run(run_dir, provider_dir, rule, cost)
    return [run, _other_datasets_run(run, others)] if others else [run]


def _folder_run(
    run_dir: Path, provider_dir: Path, rule: StatusRule, files: list[Path]
) -> ExportRun:
    period = _period_from_path(run_dir, provider_dir) or _period_from_data(files[0])
    if period is None:
        raise R.InputError(
            f"{run_dir}: FOCUS run without a billing period: no YYYYMMDD-YYYYMMDD folder on its"
            f" path and no BillingPeriodStart / BillingPeriodEnd in {files[0].name}"
        )
    first, end = period
    recency, meta_files, version = _run_metadata(run_dir, None)
    newest = max(p.stat().st_mtime for p in files)
    provider = provider_dir.name
    run = ExportRun(
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
        data_version=version,
        metadata_files=tuple(meta_files),
    )
    return replace(run, dataset_status=dataset_status(run, recency, rule))


def _focus_runs(root: Path, rule: StatusRule) -> list[ExportRun]:
    from inference_ledger.ingest import aws_exports

    runs: list[ExportRun] = []
    for provider_dir in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        manifests = _manifests(provider_dir)
        runs += [read_manifest(m, "billing.focus", rule) for m in manifests]
        aws = aws_exports.manifests(provider_dir)
        runs += [aws_exports.read_manifest(m, provider_dir, rule) for m in aws]
        # A manifest's run: its unlisted files are reported as unclaimed, never a folder run.
        with_manifest = {m.parent for m in manifests} | aws_exports.export_data_dirs(aws)
        for folder in sorted({p.parent for p in provider_dir.rglob("*") if _is_data_file(p)}):
            if with_manifest & {folder, *folder.parents} or aws_exports.is_export_data(folder):
                continue
            runs += _folder_runs(folder, provider_dir, rule)
    # Folder runs are named by their folder; two folders of one name in the same scope and
    # month are told apart by their path below the provider.
    seen: dict[tuple[str, str, str], int] = {}
    for r in runs:
        key = (r.scope_id, r.billing_month, r.run_id)
        seen[key] = seen.get(key, 0) + 1
    return [
        replace(r, run_id=str(r.blobs[0][0].parent.relative_to(root / r.export_name)))
        if r.manifest_path is None and seen[(r.scope_id, r.billing_month, r.run_id)] > 1
        else r
        for r in runs
    ]


def discover_runs(landing: Path, rule: StatusRule | None = None) -> list[ExportRun]:
    """Every export run under billing/azure (by manifest, any depth) and billing/focus."""
    rule = rule or StatusRule.load()
    azure = landing / "billing" / "azure"
    runs = (
        [read_manifest(p, "billing.azure", rule) for p in _manifests(azure)]
        if azure.is_dir()
        else []
    )
    return _without_copies(runs + _focus_runs(landing / "billing" / "focus", rule))


def _without_copies(runs: list[ExportRun]) -> list[ExportRun]:
    """A run delivered twice (the same scope, month and run id in two folders: a copy) would
    count its rows twice: the first by path is the run, each other copy is rejected."""
    first: dict[tuple[str, str, str], ExportRun] = {}
    out = []
    for r in runs:
        key = (r.scope_id, r.billing_month, r.run_id)
        original = first.setdefault(key, r)
        if original is not r and not r.rejected_reason:
            where = original.manifest_path or original.blobs[0][0].parent
            r = replace(r, rejected_reason=f"a copy of export run {r.run_id} at {where}")
        out.append(r)
    return out


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
            r.data_version,
            r.dataset_status,
            r.dataset,
        )
        for r in runs
        for path, _ in r.blobs
    ]
    return spark.createDataFrame(rows, RUN_SCHEMA)


def with_current_run(runs: DataFrame) -> DataFrame:
    """Flag `is_current_run`: the newest submitted, not rejected run of each (scope, month),
    of its FocusCost export where the scope has one for the month, else of its ActualCost."""
    per_run = runs.select(
        "scope_id", "billing_month", "run_id", "submitted_at", "rejected_reason", "dataset"
    ).distinct()
    ok = per_run.filter(F.col("rejected_reason").isNull())
    preference = F.create_map(*[F.lit(x) for kv in DATASET_RANK.items() for x in kv])
    ranked = ok.withColumn(
        "_rank",
        F.row_number().over(
            Window.partitionBy("scope_id", "billing_month").orderBy(
                F.coalesce(preference[F.col("dataset")], F.lit(len(DATASET_RANK))),
                F.col("submitted_at").desc(),
                F.col("run_id").desc(),
            )
        ),
    )
    # Run ids are unique only within a scope and month: FOCUS folder runs are named by their
    # folder (`run-1`, a date), so a join on run_id alone multiplied rows across scopes.
    key = ["scope_id", "billing_month", "run_id"]
    current = ranked.select(*key, (F.col("_rank") == 1).alias("is_current_run"))
    current_dataset = ranked.filter(F.col("_rank") == 1).select(
        "scope_id", "billing_month", F.col("dataset").alias("current_dataset")
    )
    return (
        runs.join(current, key, how="left")
        .join(current_dataset, ["scope_id", "billing_month"], how="left")
        .withColumn("is_current_run", F.coalesce(F.col("is_current_run"), F.lit(False)))
    )
