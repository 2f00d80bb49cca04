"""Export runs found by content under billing/azure and billing/focus: manifests at any
depth, FOCUS folders without one, and copies of a run (exports.py describes discovery)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from inference_ledger.ingest import aws_exports
from inference_ledger.ingest import exports as X
from inference_ledger.ingest import records as R
from inference_ledger.ingest.export_manifests import read_manifest

DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".snappy.parquet", ".gz.parquet")
_PERIOD_FOLDER = re.compile(r"^(\d{8})-(\d{8})$")


def _is_data_file(path: Path) -> bool:
    return path.is_file() and path.name.endswith(DATA_SUFFIXES) and not path.name.startswith(".")


def manifests_in(root: Path) -> list[Path]:
    """One manifest per folder, at any depth (manifest.json before a legacy _manifest.json)."""
    by_folder: dict[Path, Path] = {}
    for name in reversed(X.MANIFEST_NAMES):
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


def _other_dataset(path: Path) -> str | None:
    """The FOCUS dataset a data file holds when it is not cost and usage rows: FOCUS 1.3's
    Contract Commitment dataset (ContractCommitmentId, no BilledCost) may be delivered beside
    the cost files."""
    names = {h.lower() for h in X._header(path)}
    if "contractcommitmentid" in names and "billedcost" not in names:
        return X.CONTRACT_COMMITMENT
    return None


def _other_datasets_run(run: X.ExportRun, files: list[Path]) -> X.ExportRun:
    """The files of another FOCUS dataset in a run's folder, as a run of their own (read by
    ingest/contract_commitments.py, never as cost rows)."""
    return replace(
        run,
        run_id=f"{run.run_id}:{X.CONTRACT_COMMITMENT}",
        blobs=tuple((p, None) for p in files),
        metadata_files=(),
        dataset=X.CONTRACT_COMMITMENT,
    )


def _folder_runs(run_dir: Path, provider_dir: Path, rule: X.StatusRule) -> list[X.ExportRun]:
    files = sorted(p for p in run_dir.iterdir() if _is_data_file(p))
    others = [p for p in files if _other_dataset(p)]
    cost = [p for p in files if p not in others]
    if not cost:
        if not others:
            return []
        # Its billing period (if any) only labels it.
        first, end = _period_from_path(run_dir, provider_dir) or (date.min, date.min)
        only = X.ExportRun(
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
    run_dir: Path, provider_dir: Path, rule: X.StatusRule, files: list[Path]
) -> X.ExportRun:
    period = _period_from_path(run_dir, provider_dir) or X._period_from_data(files[0])
    if period is None:
        raise R.InputError(
            f"{run_dir}: FOCUS run without a billing period: no YYYYMMDD-YYYYMMDD folder on its"
            f" path and no BillingPeriodStart / BillingPeriodEnd in {files[0].name}"
        )
    first, end = period
    recency, meta_files, version = X._run_metadata(run_dir, None)
    newest = max(p.stat().st_mtime for p in files)
    provider = provider_dir.name
    run = X.ExportRun(
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
    return replace(run, dataset_status=X.dataset_status(run, recency, rule))


def focus_runs(root: Path, rule: X.StatusRule) -> list[X.ExportRun]:
    runs: list[X.ExportRun] = []
    for provider_dir in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        manifests = manifests_in(provider_dir)
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


def without_copies(runs: list[X.ExportRun]) -> list[X.ExportRun]:
    """A run delivered twice (the same scope, month and run id in two folders: a copy) would
    count its rows twice: the first by path is the run, each other copy is rejected."""
    first: dict[tuple[str, str, str], X.ExportRun] = {}
    out = []
    for r in runs:
        key = (r.scope_id, r.billing_month, r.run_id)
        original = first.setdefault(key, r)
        if original is not r and not r.rejected_reason:
            where = original.manifest_path or original.blobs[0][0].parent
            r = replace(r, rejected_reason=f"a copy of export run {r.run_id} at {where}")
        out.append(r)
    return out
