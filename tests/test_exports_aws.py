"""AWS Data Exports runs found in the layout S3 receives them (AWS user guide, "Understanding
export delivery" and "Data Exports manifest file reference"): one run per
`<export>-Manifest.json`, its files the manifest's `dataFiles`, data written before its manifest
never taken, a CUR 2.0 export named and not read. Data: the FOCUS spec's real AI billing
samples, delivered as AWS delivers a FOCUS export (gzip CSV parts)."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from inference_ledger.ingest import aws_exports, exports
from inference_ledger.ingest import records as R
from inference_ledger.ingest.landing import unclaimed

REAL = Path(__file__).parent / "data" / "real" / "focus-spec-ai" / "ai_billing"
SAMPLE = REAL / "csp_served_frontier_model_first_party.csv"
ARN = "arn:aws:bcm-data-exports:us-east-1:111122223333:export/focus-ai-4b7d9e2c"
EXPORT = "focus-ai"
RULE = exports.StatusRule(final_after_hours=72, final_after_hours_with_recency=0)


def deliver(
    provider_dir: Path,
    month: str,
    execution: str,
    parts: list[bytes],
    *,
    columns: list[str] | None = None,
    manifest: bool = True,
    create_new: bool = False,
    mtime: datetime | None = None,
    prefix: str = "cost/exports",
    uri_base: str | None = None,
) -> Path:
    """One execution of an export as AWS writes it: gzip CSV parts under data/, then the
    manifest under metadata/ (`create_new`: each execution in a folder of its own). The
    manifest's URIs are `<uri_base>/<export>/...` (default: a bucket of its own)."""
    export_dir = provider_dir / prefix / EXPORT
    base = uri_base or f"s3://billing-bucket/{prefix}"
    below = [f"BILLING_PERIOD={month}", *([execution] if create_new else [])]
    data_dir = export_dir.joinpath("data", *below)
    data_dir.mkdir(parents=True, exist_ok=True)
    uris = []
    for n, body in enumerate(parts, 1):
        name = f"{EXPORT}-{n:05d}.csv.gz"
        (data_dir / name).write_bytes(gzip.compress(body, mtime=0))
        uris.append(f"{base}/{EXPORT}/data/{'/'.join(below)}/{name}")
    meta_dir = export_dir.joinpath("metadata", *below)
    path = meta_dir / f"{EXPORT}-Manifest.json"
    if manifest:
        meta_dir.mkdir(parents=True, exist_ok=True)
        header = parts[0].decode("utf-8").splitlines()[0].split(",") if columns is None else columns
        doc = {
            "executionId": execution,
            "exportArn": ARN,
            "columns": [{"name": c, "type": "string"} for c in header],
            "dataFiles": uris,
        }
        path.write_text(json.dumps(doc))
        if mtime is not None:
            os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


def _only_run(landing: Path) -> exports.ExportRun:
    [run] = exports.discover_runs(landing, RULE)
    return run


def test_an_aws_focus_export_is_one_run_read_by_its_manifest(tmp_path):
    body = SAMPLE.read_bytes()
    manifest = deliver(tmp_path / "billing/focus/aws", "2025-05", "exec-0001", [body, body])
    run = _only_run(tmp_path)
    data = manifest.parent.parent.parent / "data" / "BILLING_PERIOD=2025-05"
    assert (run.scope_id, run.export_name, run.run_id, run.billing_month) == (
        ARN,
        EXPORT,
        "exec-0001",
        "2025-05",
    )
    assert (run.period_start, run.period_end) == (date(2025, 5, 1), date(2025, 6, 1))
    assert run.blobs == (
        (data / f"{EXPORT}-00001.csv.gz", None),
        (data / f"{EXPORT}-00002.csv.gz", None),
    )
    assert (run.rejected_reason, run.dataset, run.not_read_reason) == (None, "FocusCost", None)
    assert run.manifest_path == manifest and run.manifest_shape == "aws-data-exports"
    # Manifest and data files are claimed: nothing is left to name.
    claimed = {str(p) for p in run.claimed_files}
    assert unclaimed(tmp_path, claimed, ["billing"]) == []


def test_a_data_file_the_manifest_lists_but_that_is_not_there_rejects_the_run(tmp_path):
    body = SAMPLE.read_bytes()
    deliver(tmp_path / "billing/focus/aws", "2025-05", "exec-0002", [body, body])
    gone = next((tmp_path / "billing/focus/aws").rglob(f"{EXPORT}-00002.csv.gz"))
    gone.unlink()
    run = _only_run(tmp_path)
    assert run.rejected_reason == (
        "manifest lists data file(s) not delivered: s3://billing-bucket/cost/exports/focus-ai/"
        "data/BILLING_PERIOD=2025-05/focus-ai-00002.csv.gz"
    )
    assert [p.name for p, _ in run.blobs] == [f"{EXPORT}-00001.csv.gz"]


def test_data_written_before_its_manifest_is_named_not_read(tmp_path):
    """A new month's refresh in progress: its parts are there, its manifest not yet."""
    body = SAMPLE.read_bytes()
    deliver(tmp_path / "billing/focus/aws", "2025-05", "exec-0003", [body])
    deliver(tmp_path / "billing/focus/aws", "2025-06", "exec-0004", [body], manifest=False)
    run = _only_run(tmp_path)
    assert run.billing_month == "2025-05"
    named = unclaimed(tmp_path, {str(p) for p in run.claimed_files}, ["billing"])
    assert [(Path(r["source_file"]).name, r["warning"]) for r in named] == [
        (f"{EXPORT}-00001.csv.gz", "not claimed by any export manifest or FOCUS run")
    ]
    assert "BILLING_PERIOD=2025-06" in named[0]["source_file"]


def test_create_new_deliveries_keep_each_execution_and_the_newest_counts(tmp_path):
    body = SAMPLE.read_bytes()
    older = datetime(2025, 5, 20, 6, tzinfo=UTC)
    newer = datetime(2025, 6, 2, 6, tzinfo=UTC)
    provider = tmp_path / "billing/focus/aws"
    deliver(provider, "2025-05", "exec-a", [body], create_new=True, mtime=older)
    deliver(provider, "2025-05", "exec-b", [body, body], create_new=True, mtime=newer)
    runs = {r.run_id: r for r in exports.discover_runs(tmp_path, RULE)}
    assert sorted(runs) == ["exec-a", "exec-b"]
    assert {r.scope_id for r in runs.values()} == {ARN}
    assert (runs["exec-a"].submitted_at, runs["exec-b"].submitted_at) == (older, newer)
    assert [len(r.blobs) for r in (runs["exec-a"], runs["exec-b"])] == [1, 2]
    assert all("exec-b" in str(p) for p, _ in runs["exec-b"].blobs)


def test_the_month_comes_from_billing_period_when_the_manifest_gives_it(tmp_path):
    body = SAMPLE.read_bytes()
    manifest = deliver(tmp_path / "billing/focus/aws", "2025-05", "exec-0005", [body])
    doc = json.loads(manifest.read_text())
    doc["billingPeriod"] = {"start": "2025-04-01T00:00:00.000Z", "end": "2025-05-01T00:00:00Z"}
    manifest.write_text(json.dumps(doc))
    assert _only_run(tmp_path).billing_month == "2025-04"


def test_a_cur_2_export_is_named_and_not_read(tmp_path):
    cur = b"bill_billing_period_start_date,line_item_unblended_cost\n2025-05-01,1.50\n"
    deliver(tmp_path / "billing/focus/aws", "2025-05", "exec-cur", [cur])
    run = _only_run(tmp_path)
    assert run.dataset == aws_exports.CUR_2
    assert run.not_read_reason.startswith("an AWS CUR 2.0 export: its columns are not FOCUS")


def test_an_invalid_manifest_names_the_file_and_the_field(tmp_path):
    manifest = deliver(tmp_path / "billing/focus/aws", "2025-05", "exec-0006", [b"BilledCost\n"])
    manifest.write_text(json.dumps({"exportArn": ARN, "dataFiles": []}))
    with pytest.raises(R.InputError, match=r"-Manifest.json: invalid AWS export manifest: "
                       r"'executionId' is a required property"):  # fmt: skip
        exports.discover_runs(tmp_path, RULE)


def test_data_files_resolve_below_the_nearest_folder_and_never_climb_out(tmp_path):
    body = SAMPLE.read_bytes()
    manifest = deliver(tmp_path / "billing/focus/aws", "2025-05", "exec-0007", [body], prefix="x")
    top = tmp_path / "billing/focus/aws"
    found = aws_exports.data_file(
        manifest, top, "s3://other-bucket/deep/prefix/x/focus-ai/data/BILLING_PERIOD=2025-05/"
        "focus-ai-00001.csv.gz",
    )  # fmt: skip
    assert found == top / "x/focus-ai/data/BILLING_PERIOD=2025-05/focus-ai-00001.csv.gz"
    assert aws_exports.data_file(manifest, top, "s3://b/../../etc/passwd") is None
    assert aws_exports.data_file(manifest, top, "s3://b/focus-ai/data/nothing.csv.gz") is None


def test_a_new_exports_first_data_waits_for_its_first_manifest(tmp_path):
    """No manifest of the export exists yet: its partition is still not a FOCUS folder run."""
    body = SAMPLE.read_bytes()
    deliver(tmp_path / "billing/focus/aws", "2025-05", "exec-0008", [body], manifest=False)
    assert exports.discover_runs(tmp_path, RULE) == []
    [named] = unclaimed(tmp_path, set(), ["billing"])
    assert named["source_file"].endswith("BILLING_PERIOD=2025-05/focus-ai-00001.csv.gz")
