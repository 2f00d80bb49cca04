"""Export runs found the way Cost Management and FOCUS producers deliver them, on tiny
hand-built landing folders: by manifest at any depth, facts from the manifest's content, both
manifest shapes checked against their files, month status, and every other file named."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from inference_ledger.ingest import exports
from inference_ledger.ingest import records as R
from inference_ledger.ingest.landing import nothing_to_ingest, unclaimed
from inference_ledger.run.context import RunContext
from inference_ledger.steps.ingest import ingest_landing
from tests.helpers import D

SCOPE = "/providers/Microsoft.Billing/billingAccounts/8611537"
EXPORT = "ea-actualcost-daily"
EXPORT_ID = f"{SCOPE}/providers/Microsoft.CostManagement/exports/{EXPORT}"
RULE = exports.StatusRule(final_after_hours=72, final_after_hours_with_recency=0)
EA_HEADER = [
    "BillingAccountId",
    "BillingAccountName",
    "SubscriptionId",
    "ResourceGroup",
    "Date",
    "MeterCategory",
    "MeterName",
    "UnitOfMeasure",
    "Quantity",
    "CostInBillingCurrency",
    "BillingCurrencyCode",
    "ResourceLocation",
    "ResourceId",
    "Tags",
    "ChargeType",
]


def ea_csv(*rows: tuple[str, str], currency: str = "USD") -> bytes:
    """An EA actual-cost blob: (MM/DD/YYYY, cost) per row, one inference VM."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(EA_HEADER)
    for day, cost in rows:
        w.writerow(["8611537", "Acme", "sub-1", "rg-inference-eastus", day, "Virtual Machines",
                    "ND96isr H100 v5", "1 Hour", "1", cost, currency, "eastus", "/subscriptions/x",
                    '"workload": "inference"', "Usage"])  # fmt: skip
    return out.getvalue().encode()


def azure_run(
    landing: Path,
    rel: str,
    run_id: str,
    blobs: dict[str, bytes],
    *,
    start: str,
    end: str,
    submitted: str,
    shape: str = "2024-04-01",
    declared_rows: dict[str, int] | None = None,
    declared_bytes: dict[str, int] | None = None,
    manifest_name: str = "manifest.json",
    container_root: str = "",
) -> Path:
    """A run folder `billing/azure/<rel>` with its blobs and a manifest of `shape`; blob names
    are container paths (`container_root` + the folder's path below billing/azure)."""
    run_dir = landing / "billing" / "azure" / rel
    run_dir.mkdir(parents=True)
    entries = []
    for name, body in blobs.items():
        (run_dir / name).write_bytes(body)
        blob = {
            "blobName": f"{container_root}{rel}/{name}",
            "byteCount": (declared_bytes or {}).get(name, len(body)),
        }
        if shape == "2024-04-01":
            rows = len(body.decode().strip().splitlines()) - 1
            blob["dataRowCount"] = (declared_rows or {}).get(name, rows)
        entries.append(blob)
    doc = {
        "exportConfig": {
            "exportName": EXPORT,
            "resourceId": EXPORT_ID,
            "dataVersion": "2021-10-01",
            "apiVersion": "2023-07-01-preview",
            "type": "ActualCost",
            "timeFrame": "MonthToDate",
            "granularity": "Daily",
        },
        "deliveryConfig": {"partitionData": True, "fileFormat": "Csv", "rootFolderPath": "x"},
        "runInfo": {
            "executionType": "Scheduled",
            "submittedTime": submitted,
            "runId": run_id,
            "startDate": start,
            "endDate": end,
        },
        "blobs": entries,
    }
    if shape == "2024-04-01":
        doc = {
            "manifestVersion": "2024-04-01",
            "byteCount": sum(b["byteCount"] for b in entries),
            "blobCount": len(entries),
            "dataRowCount": sum(b["dataRowCount"] for b in entries),
            **doc,
        }
    (run_dir / manifest_name).write_text(json.dumps(doc, indent=2))
    return run_dir


def facts(run: exports.ExportRun) -> tuple:
    return (
        run.source, run.export_name, run.scope_id, run.billing_month, run.period_start,
        run.period_end, run.run_id, run.submitted_at, run.data_version, run.manifest_shape,
        run.covered_through, run.dataset_status, run.rejected_reason,
    )  # fmt: skip


REAL = "cost-exports/ea/ea-actualcost-daily/20240201-20240229/202402210547/0f6c7a0e-1111"


def test_a_run_five_levels_deep_is_found_with_its_facts_from_the_manifest(tmp_path):
    run_dir = azure_run(
        tmp_path,
        REAL,
        "0f6c7a0e-1111",
        {"part_0_0001.csv": ea_csv(("02/01/2024", "1.00"), ("02/02/2024", "2.00"))},
        start="2024-02-01T00:00:00",
        end="2024-02-20T00:00:00Z",
        submitted="2024-02-21T05:47:07.1234567Z",
    )
    # The same export copied by hand under folders that say nothing (or something else): the
    # manifest's content, not the path, says what it is.
    azure_run(
        tmp_path,
        "copies/march/whatever",
        "run-b",
        {"part_0_0001.csv": ea_csv(("01/31/2024", "3.00"))},
        start="2024-01-01T00:00:00",
        end="2024-02-01T00:00:00",  # an exclusive end: the whole of January
        submitted="2024-02-05T01:00:00Z",
        container_root="exports/",
    )
    runs = exports.discover_runs(tmp_path, RULE)
    by_id = {r.run_id: r for r in runs}
    assert sorted(by_id) == ["0f6c7a0e-1111", "run-b"]
    real = by_id["0f6c7a0e-1111"]
    assert facts(real) == (
        "billing.azure", EXPORT, SCOPE, "2024-02", date(2024, 2, 1), date(2024, 3, 1),
        "0f6c7a0e-1111", datetime(2024, 2, 21, 5, 47, 7, 123456, tzinfo=UTC), "2021-10-01",
        "2024-04-01", date(2024, 2, 20), "provisional", None,
    )  # fmt: skip
    assert real.blobs == ((run_dir / "part_0_0001.csv", 2),)
    assert real.metadata_files == (run_dir / "manifest.json",)
    copy = by_id["run-b"]
    assert (copy.billing_month, copy.period_start, copy.period_end, copy.covered_through) == (
        "2024-01", date(2024, 1, 1), date(2024, 2, 1), date(2024, 1, 31),
    )  # fmt: skip
    # Submitted 97 hours after January ended and covering all of it: final.
    assert copy.dataset_status == "final"


def test_preview_shape_is_checked_by_bytes_and_a_mismatch_names_blob_and_counts(tmp_path):
    good = azure_run(
        tmp_path,
        "ea/ea-actualcost-daily/20240101-20240131/202401150312/run-a",
        "run-a",
        {"part_0_0001.csv": ea_csv(("01/02/2024", "1.00"))},
        start="2024-01-01T00:00:00",
        end="2024-01-14T00:00:00",
        submitted="2024-01-15T03:12:00Z",
        shape="2023-07-01-preview",
    )
    body = ea_csv(("01/02/2024", "1.00"), ("01/03/2024", "2.00"))
    azure_run(
        tmp_path,
        "ea/ea-actualcost-daily/20240101-20240131/202401200312/run-b",
        "run-b",
        {"part_0_0001.csv": body},
        start="2024-01-01T00:00:00",
        end="2024-01-19T00:00:00",
        submitted="2024-01-20T03:12:00Z",
        shape="2023-07-01-preview",
        declared_bytes={"part_0_0001.csv": len(body) + 5},
    )
    a, b = exports.discover_runs(tmp_path, RULE)
    assert (a.run_id, a.manifest_shape, a.blobs, a.rejected_reason) == (
        "run-a", "2023-07-01-preview", ((good / "part_0_0001.csv", None),), None,
    )  # fmt: skip
    assert b.rejected_reason == (
        f"part_0_0001.csv: manifest says {len(body) + 5} bytes, file has {len(body)}"
    )
    # No row counts to hold the files to: the row-count check leaves both runs as they are.
    assert exports.with_row_count_check([a, b], {}) == [a, b]


def test_row_count_mismatch_in_a_2024_04_01_manifest_rejects_the_run(tmp_path):
    run_dir = azure_run(
        tmp_path,
        REAL,
        "r1",
        {"part_0_0001.csv": ea_csv(("02/01/2024", "1.00"), ("02/02/2024", "2.00"))},
        start="2024-02-01T00:00:00",
        end="2024-02-20T00:00:00",
        submitted="2024-02-21T05:47:00Z",
        declared_rows={"part_0_0001.csv": 3},
    )
    (run,) = exports.discover_runs(tmp_path, RULE)
    # The manifest agrees with itself (3 rows in total and in its one blob): its files are
    # counted when read.
    doc = json.loads((run_dir / "manifest.json").read_text())
    assert (doc["dataRowCount"], doc["blobs"][0]["dataRowCount"]) == (3, 3)
    assert (run.blobs, run.rejected_reason) == (((run_dir / "part_0_0001.csv", 3),), None)
    (checked,) = exports.with_row_count_check([run], {str(run_dir / "part_0_0001.csv"): 2})
    assert checked.rejected_reason == "part_0_0001.csv: manifest says 3 data rows, file has 2"


def test_manifest_totals_that_disagree_with_its_blobs_reject_the_run(tmp_path):
    run_dir = azure_run(
        tmp_path,
        REAL,
        "r1",
        {"part_0_0001.csv": ea_csv(("02/01/2024", "1.00"))},
        start="2024-02-01T00:00:00",
        end="2024-02-20T00:00:00",
        submitted="2024-02-21T05:47:00Z",
    )
    doc = json.loads((run_dir / "manifest.json").read_text())
    doc.update(blobCount=2, dataRowCount=7)
    (run_dir / "manifest.json").write_text(json.dumps(doc))
    (run,) = exports.discover_runs(tmp_path, RULE)
    assert run.rejected_reason == (
        "manifest says blobCount 2, lists 1 blobs; manifest says dataRowCount 7, its blobs 1"
    )


def test_legacy_underscore_manifest_one_level_less(tmp_path):
    run_dir = azure_run(
        tmp_path,
        "ea-actualcost-daily/20240101-20240131/legacy-1",
        "legacy-1",
        {"part_1.csv": ea_csv(("01/02/2024", "1.00"))},
        start="2024-01-01T00:00:00Z",
        end="2024-01-31T00:00:00Z",
        submitted="2024-02-01T06:00:00Z",
        manifest_name="_manifest.json",
    )
    (run,) = exports.discover_runs(tmp_path, RULE)
    assert (run.run_id, run.billing_month, run.blobs, run.manifest_path) == (
        "legacy-1", "2024-01", ((run_dir / "part_1.csv", 1),), run_dir / "_manifest.json",
    )  # fmt: skip
    # Whole month, but only 6 hours after it ended (latent charges arrive for 72): provisional.
    assert run.dataset_status == "provisional"


def test_a_missing_blob_and_a_blob_outside_its_folder_reject_the_run(tmp_path):
    run_dir = azure_run(
        tmp_path,
        REAL,
        "r1",
        {"part_0_0001.csv": ea_csv(("02/01/2024", "1.00"))},
        start="2024-02-01T00:00:00",
        end="2024-02-20T00:00:00",
        submitted="2024-02-21T05:47:00Z",
    )
    doc = json.loads((run_dir / "manifest.json").read_text())
    doc["blobs"].append({"blobName": "../../secret.csv", "byteCount": 1, "dataRowCount": 1})
    doc.update(blobCount=2, dataRowCount=2)
    (run_dir / "manifest.json").write_text(json.dumps(doc))
    (run,) = exports.discover_runs(tmp_path, RULE)
    assert run.rejected_reason == "manifest lists blob(s) not delivered: ../../secret.csv"
    assert run.missing_blobs == ("../../secret.csv",)


def test_focus_runs_with_and_without_a_manifest_at_any_depth(tmp_path):
    focus = tmp_path / "billing" / "focus"
    plain = focus / "aws" / "payer-1" / "2025" / "20250501-20250531" / "run-20250603"
    plain.mkdir(parents=True)
    (plain / "cur.csv").write_text(
        "BilledCost,BillingPeriodStart,BillingPeriodEnd\n1,2025-05-01T00:00:00Z,2025-06-01T00:00:00Z\n"
    )
    no_period_folder = focus / "gcp" / "exports" / "may"
    no_period_folder.mkdir(parents=True)
    (no_period_folder / "bill.csv.gz").write_bytes(
        __import__("gzip").compress(
            b"BilledCost,BillingPeriodStart,BillingPeriodEnd\n1,2025-04-01 00:00:00,2025-05-01 00:00:00\n"
        )
    )
    june = datetime(2025, 6, 10, tzinfo=UTC).timestamp()
    for p in (plain / "cur.csv", no_period_folder / "bill.csv.gz"):
        os.utime(p, (june, june))
    azure_focus = (
        focus / "azure" / "1.2" / "focus-cost" / "20250501-20250531" / "202506051200" / "g1"
    )
    azure_focus.mkdir(parents=True)
    (azure_focus / "part_0_0001.csv").write_text("BilledCost\n1\n")
    (azure_focus / "manifest.json").write_text(json.dumps({
        "exportConfig": {"exportName": "focus-cost", "resourceId": f"{SCOPE}/providers/"
                         "Microsoft.CostManagement/exports/focus-cost", "dataVersion": "1.0r2",
                         "type": "FocusCost"},
        "runInfo": {"submittedTime": "2025-06-05T12:00:00Z", "runId": "g1",
                    "startDate": "2025-05-01T00:00:00", "endDate": "2025-05-31T00:00:00"},
        "blobs": [{"blobName": "1.2/focus-cost/20250501-20250531/202506051200/g1/part_0_0001.csv",
                   "byteCount": 13}],
    }))  # fmt: skip
    runs = {r.scope_id: r for r in exports.discover_runs(tmp_path, RULE)}
    assert sorted(runs) == [SCOPE, "focus:aws", "focus:gcp"]
    aws, gcp, azure = runs["focus:aws"], runs["focus:gcp"], runs[SCOPE]
    assert (aws.source, aws.export_name, aws.billing_month, aws.period_end, aws.run_id) == (
        "billing.focus", "aws", "2025-05", date(2025, 6, 1), "run-20250603",
    )  # fmt: skip
    # No period folder on its path: the billing period is the first row's.
    assert (gcp.billing_month, gcp.period_start, gcp.period_end) == (
        "2025-04", date(2025, 4, 1), date(2025, 5, 1),
    )  # fmt: skip
    assert (azure.source, azure.data_version, azure.manifest_shape, azure.rejected_reason) == (
        "billing.focus", "1.0r2", "2023-07-01-preview", None,
    )  # fmt: skip
    assert azure.blobs == ((azure_focus / "part_0_0001.csv", None),)
    # 9 days after May: final; June 10th is 40 days after April as well.
    assert (aws.dataset_status, gcp.dataset_status, azure.dataset_status) == ("final",) * 3


def _recency_run(tmp_path: Path, recency: dict, submitted: datetime) -> exports.ExportRun:
    run_dir = tmp_path / "billing" / "focus" / "acme" / "20250501-20250531" / "r1"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "costs.csv").write_text("BilledCost\n1\n")
    (run_dir / "recency-1.json").write_text(json.dumps(recency))
    os.utime(run_dir / "costs.csv", (submitted.timestamp(),) * 2)
    (run,) = exports.discover_runs(tmp_path, RULE)
    assert run.metadata_files == (run_dir / "recency-1.json",)
    return run


def _sector(start: str, end: str, complete: bool) -> dict:
    return {"TimeSectorStart": start, "TimeSectorEnd": end, "TimeSectorComplete": complete,
            "TimeSectorLastUpdated": "2025-06-01T04:00:00z"}  # fmt: skip


def test_dataset_status_provisional_and_final(tmp_path):
    end_of_may = datetime(2025, 6, 1, tzinfo=UTC)
    sectors = [_sector("2025-05-01T0:00:00z", "2025-05-16T00:00:00z", True),
               _sector("2025-05-16T00:00:00Z", "2025-06-01T00:00:00Z", True)]  # fmt: skip
    # FOCUS 1.3 Recency: every time sector of May complete, one hour after the month: final
    # (the producer says so; the 72-hour wait is for deliveries without Recency).
    complete = {"DatasetInstanceId": "d1", "RecencyLastUpdated": "2025-06-01T01:00:00Z",
                "TimeSectors": sectors}  # fmt: skip
    run = _recency_run(tmp_path / "a", complete, end_of_may + timedelta(hours=1))
    assert run.dataset_status == "final"
    # One sector not complete (or a gap in May) keeps the month provisional, however late.
    late = end_of_may + timedelta(days=30)
    torn = {**complete, "TimeSectors": [sectors[0], {**sectors[1], "TimeSectorComplete": False}]}
    assert _recency_run(tmp_path / "b", torn, late).dataset_status == "provisional"
    gap = {**complete, "TimeSectors": [sectors[0]]}
    assert _recency_run(tmp_path / "c", gap, late).dataset_status == "provisional"
    not_done = {"DatasetInstanceId": "d1", "DatasetInstanceComplete": False}
    assert _recency_run(tmp_path / "d", {"Recency": [not_done]}, late).dataset_status == (
        "provisional"
    )
    # No Recency metadata: final only 72 hours after the month ended.
    plain = tmp_path / "e" / "billing" / "focus" / "acme" / "20250501-20250531" / "r1"
    plain.mkdir(parents=True)
    (plain / "costs.csv").write_text("BilledCost\n1\n")
    for hours, status in ((71, "provisional"), (72, "final")):
        os.utime(plain / "costs.csv", ((end_of_may + timedelta(hours=hours)).timestamp(),) * 2)
        (run,) = exports.discover_runs(tmp_path / "e", RULE)
        assert (hours, run.dataset_status) == (hours, status)
    # A month-to-date Azure run is provisional whenever it ran.
    mtd = exports.ExportRun(
        "billing.azure", EXPORT, SCOPE, "2025-05", date(2025, 5, 1), date(2025, 6, 1), "m",
        late, None, (), covered_through=date(2025, 5, 30),
    )  # fmt: skip
    assert exports.dataset_status(mtd, [], RULE) == "provisional"
    assert (
        exports.dataset_status(
            exports.ExportRun(**{**mtd.__dict__, "covered_through": date(2025, 5, 31)}), [], RULE
        )
        == "final"
    )


def test_the_shipped_status_rule():
    assert exports.StatusRule.load() == RULE


def test_unclaimed_files_are_named_with_a_warning(tmp_path):
    run_dir = azure_run(
        tmp_path,
        REAL,
        "r1",
        {"part_0_0001.csv": ea_csv(("02/01/2024", "1.00"))},
        start="2024-02-01T00:00:00",
        end="2024-02-20T00:00:00",
        submitted="2024-02-21T05:47:00Z",
    )
    stray_billing = tmp_path / "billing" / "azure" / "cost-exports" / "costs-by-hand.csv"
    stray_billing.write_bytes(ea_csv(("02/01/2024", "9.00")))
    unlisted = run_dir / "part_1_0001.csv"  # in a run folder, but not in its manifest
    unlisted.write_bytes(ea_csv(("02/01/2024", "9.00")))
    stray_root = tmp_path / "notes.txt"
    stray_root.write_text("ask finance")
    usage_file = tmp_path / "usage" / "openai" / "2024-02-01" / "page-0001.json"
    usage_file.parent.mkdir(parents=True)
    usage_file.write_text("{}")
    odd_usage = tmp_path / "usage" / "openai" / "README.md"
    odd_usage.write_text("x")
    revenue = tmp_path / "finance" / "revenue" / "revenue_2024.csv"
    revenue.parent.mkdir(parents=True)
    revenue.write_text("entry_id\n")
    runs = exports.discover_runs(tmp_path, RULE)
    claimed = {str(p) for r in runs for p in r.claimed_files} | {str(usage_file)}
    # This ingest read billing and usage; finance/ is left for the ingest that reads it.
    rows = unclaimed(tmp_path, claimed, ("billing", "usage"))
    got = {
        str(Path(r["source_file"]).relative_to(tmp_path)): (
            r["source"], r["rows_read"], r["rows_loaded"], r["rows_quarantined"], r["warning"],
            r["byte_count"], r["checksum_sha256"] == R.sha256_file(Path(r["source_file"])),
        )
        for r in rows
    }  # fmt: skip
    billing_why = "not claimed by any export manifest or FOCUS run"
    assert got == {
        "billing/azure/cost-exports/costs-by-hand.csv": (
            "billing.unclaimed", 0, 0, 0, billing_why, stray_billing.stat().st_size, True,
        ),
        f"billing/azure/{REAL}/part_1_0001.csv": (
            "billing.unclaimed", 0, 0, 0, billing_why, unlisted.stat().st_size, True,
        ),
        "notes.txt": (
            "landing.unclaimed", 0, 0, 0,
            "outside billing/, usage/ and finance/: no reader takes it", 11, True,
        ),
        "usage/openai/README.md": (
            "usage.unclaimed", 0, 0, 0,
            "not a usage page (usage/<source>/<YYYY-MM-DD>/*.json[l][.gz])", 1, True,
        ),
    }  # fmt: skip


def test_a_landing_with_nothing_ingestible_says_what_it_found(tmp_path):
    (tmp_path / "billing" / "azure").mkdir(parents=True)
    (tmp_path / "billing" / "azure" / "costs.xlsx").write_bytes(b"PK")
    (tmp_path / "billing" / "readme.md").write_text("x")
    (tmp_path / "exports.zip").write_bytes(b"PK")
    assert exports.discover_runs(tmp_path, RULE) == []
    err = nothing_to_ingest(tmp_path)
    assert isinstance(err, R.InputError)
    assert str(err) == (
        f"nothing to ingest under {tmp_path}: no export run, usage page or finance file "
        "(files found: billing/: 2, usage/: 0, finance/: 0, elsewhere: 1); expected "
        "billing/azure/**/manifest.json (or _manifest.json) with its part_* blobs; "
        "billing/focus/<provider>/**/ data files (.csv, .csv.gz, .parquet), with or without a "
        "manifest; usage/<source>/<YYYY-MM-DD>/*.json[l][.gz]; "
        "finance/{revenue,settlements,contracts,fx,prices,commitments}/*.csv[.gz]"
    )


def test_ingest_of_an_unrelated_landing_is_an_error_naming_what_it_found(spark, tmp_path):
    from inference_ledger.settings import Settings

    landing = tmp_path / "landing"
    (landing / "downloads").mkdir(parents=True)
    (landing / "downloads" / "invoice.pdf").write_bytes(b"%PDF")
    settings = Settings(home=tmp_path / "home", database_url=None, spark_master="local[2]")
    ctx = RunContext(run_id="r", landing=landing, settings=settings)
    with pytest.raises(
        R.InputError,
        match=r"nothing to ingest under .*landing: .*\(files found: billing/: 0, usage/: 0, "
        r"finance/: 0, elsewhere: 1\); expected billing/azure/\*\*/manifest\.json",
    ):
        ingest_landing(spark, ctx)


def _billing_run(landing: Path, home: Path, monkeypatch) -> tuple[RunContext, list[list[str]]]:
    """A billing-only run's context, and the run folders of the files each
    `billing.read_billing_files` call reads (in order), as the ingest makes them."""
    from inference_ledger.ingest import billing
    from inference_ledger.settings import Settings

    settings = Settings(home=home, database_url=None, spark_master="local[2]")
    ctx = RunContext(run_id="r", landing=landing, settings=settings, sources=("billing",))
    reads, read = [], billing.read_billing_files
    monkeypatch.setattr(
        billing,
        "read_billing_files",
        lambda spark, files: reads.append([f.parent.name for f in files]) or read(spark, files),
    )
    return ctx, reads


# apart: each file read in a partition of its own and the records written in the lake's
# layout, as large files are (billing.reads_apart), for every pass of the ingest.
@pytest.mark.parametrize("apart", [False, True], ids=["packed", "apart"])
def test_ingest_names_unclaimed_files_and_keeps_the_good_run_with_its_status(
    spark, tmp_path, caplog, monkeypatch, apart
):
    from inference_ledger import lake
    from inference_ledger.ingest import billing

    monkeypatch.setattr(billing, "APART_MEAN_BYTES", 1 if apart else billing.APART_MEAN_BYTES)

    landing = tmp_path / "landing"
    root = "cost-exports/ea/ea-actualcost-daily"
    azure_run(
        landing, f"{root}/20240101-20240131/202402050400/jan", "jan",
        {"part_0_0001.csv": ea_csv(("01/02/2024", "10.00"), ("01/03/2024", "5.50"))},
        start="2024-01-01T00:00:00", end="2024-01-31T00:00:00", submitted="2024-02-05T04:00:00Z",
    )  # fmt: skip
    azure_run(
        landing, f"{root}/20240201-20240229/202402100400/feb-1", "feb-1",
        {"part_0_0001.csv": ea_csv(("02/01/2024", "7.00"))},
        start="2024-02-01T00:00:00", end="2024-02-09T00:00:00", submitted="2024-02-10T04:00:00Z",
    )  # fmt: skip
    # A newer February run whose manifest declares a row more than its file holds.
    azure_run(
        landing, f"{root}/20240201-20240229/202402200400/feb-2", "feb-2",
        {"part_0_0001.csv": ea_csv(("02/01/2024", "8.00"), ("02/02/2024", "8.00"))},
        start="2024-02-01T00:00:00", end="2024-02-19T00:00:00", submitted="2024-02-20T04:00:00Z",
        declared_rows={"part_0_0001.csv": 3},
    )  # fmt: skip
    stray = landing / "billing" / "azure" / "cost-exports" / "by-hand.csv"
    stray.write_bytes(ea_csv(("02/01/2024", "99.00")))
    readme = landing / "README.txt"
    readme.write_text("exports land here")
    fx = landing / "finance" / "fx" / "fx.csv"
    fx.parent.mkdir(parents=True)
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(60)]
    fx.write_text("rate_date,currency,usd_per_unit\n" + "".join(f"{d},USD,1\n" for d in days))
    ctx, reads = _billing_run(landing, tmp_path / "home", monkeypatch)
    with caplog.at_level("WARNING", logger="inference_ledger.ingest.landing"):
        rows = ingest_landing(spark, ctx)
    # Rejecting feb-2 (row count) makes feb-1 February's current run: only February's files
    # are checked again, January's records stay as first checked.
    assert reads == [["jan", "feb-1", "feb-2"], ["feb-1", "feb-2"]]
    got = {
        str(Path(r["source_file"]).relative_to(landing)): (
            r["source"], r["rows_read"], r["rows_loaded"], r["rows_superseded"],
            r["rows_quarantined"], r.get("warning"),
        )
        for r in rows
    }  # fmt: skip
    billing_why = "not claimed by any export manifest or FOCUS run"
    assert got == {
        f"billing/azure/{root}/20240101-20240131/202402050400/jan/part_0_0001.csv": (
            "billing.azure", 2, 2, 0, 0, None,
        ),
        f"billing/azure/{root}/20240201-20240229/202402100400/feb-1/part_0_0001.csv": (
            "billing.azure", 1, 1, 0, 0, None,
        ),
        f"billing/azure/{root}/20240201-20240229/202402200400/feb-2/part_0_0001.csv": (
            "billing.azure", 2, 0, 0, 2, None,
        ),
        "finance/fx/fx.csv": ("finance.fx", 60, 60, 0, 0, None),
        "billing/azure/cost-exports/by-hand.csv": ("billing.unclaimed", 0, 0, 0, 0, billing_why),
        "README.txt": (
            "landing.unclaimed", 0, 0, 0, 0,
            "outside billing/, usage/ and finance/: no reader takes it",
        ),
    }  # fmt: skip
    assert f"{stray}: {billing_why}" in caplog.text
    assert f"{readme}: outside billing/" in caplog.text
    lines = lake.read_table(spark, ctx.lake_dir, "billing_lines")
    assert sorted(
        (r["billing_month"], r["source_run_id"], r["dataset_status"], r["billed_cost_usd"])
        for r in lines.collect()
    ) == [
        ("2024-01", "jan", "final", D("5.50")),
        ("2024-01", "jan", "final", D("10.00")),
        ("2024-02", "feb-1", "provisional", D("7.00")),
    ]
    quarantine = lake.read_run_output(spark, ctx.lake_dir, "r", "quarantine").collect()
    assert sorted((Path(q["source_file"]).parent.name, q["line_number"]) for q in quarantine) == [
        ("feb-2", 2),
        ("feb-2", 3),
    ]
    # Both passes' checked records were written under the run, and are gone once it is done.
    work = Path(lake.run_path(ctx.lake_dir, "r", "work"))
    assert work.is_dir() and not (work / "billing_records").exists()


@pytest.mark.parametrize("apart", [False, True], ids=["packed", "apart"])
def test_a_month_without_an_fx_rate_is_checked_again_alone(spark, tmp_path, monkeypatch, apart):
    from inference_ledger import lake
    from inference_ledger.ingest import billing

    monkeypatch.setattr(billing, "APART_MEAN_BYTES", 1 if apart else billing.APART_MEAN_BYTES)

    landing = tmp_path / "landing"
    root = "cost-exports/ea/ea-actualcost-daily"
    azure_run(
        landing, f"{root}/20240101-20240131/202402050400/jan", "jan",
        {"part_0_0001.csv": ea_csv(("01/02/2024", "10.00"))},
        start="2024-01-01T00:00:00", end="2024-01-31T00:00:00", submitted="2024-02-05T04:00:00Z",
    )  # fmt: skip
    azure_run(
        landing, f"{root}/20240201-20240229/202403050400/feb", "feb",
        {"part_0_0001.csv": ea_csv(("02/01/2024", "7.00"), ("02/02/2024", "8.00"), currency="EUR")},
        start="2024-02-01T00:00:00", end="2024-02-29T00:00:00", submitted="2024-03-05T04:00:00Z",
    )  # fmt: skip
    fx = landing / "finance" / "fx" / "fx.csv"
    fx.parent.mkdir(parents=True)
    january = [date(2024, 1, 1) + timedelta(days=i) for i in range(31)]
    # EUR rates for January only: February's EUR lines have none.
    fx.write_text("rate_date,currency,usd_per_unit\n" + "".join(f"{d},EUR,1.1\n" for d in january))
    ctx, reads = _billing_run(landing, tmp_path / "home", monkeypatch)
    rows = ingest_landing(spark, ctx)
    assert reads == [["jan", "feb"], ["feb"]]
    assert ctx.failed_months == {
        "2024-02": ["no FX rate to USD for EUR on 2024-02-01", "no FX rate to USD for EUR on 2024-02-02"]
    }  # fmt: skip
    got = {
        Path(r["source_file"]).parent.name: (
            r["rows_read"],
            r["rows_loaded"],
            r["rows_quarantined"],
        )
        for r in rows
        if r["source"] == "billing.azure"
    }
    assert got == {"jan": (1, 1, 0), "feb": (2, 0, 2)}
    lines = lake.read_table(spark, ctx.lake_dir, "billing_lines").collect()
    assert [(r["source_run_id"], r["billed_cost_usd"]) for r in lines] == [("jan", D("10.00"))]
    quarantine = lake.read_run_output(spark, ctx.lake_dir, "r", "quarantine").collect()
    why = (
        "billing month not loaded: no FX rate to USD for EUR on 2024-02-01; "
        "no FX rate to USD for EUR on 2024-02-02"
    )
    assert sorted((q["line_number"], q["reason"]) for q in quarantine) == [(2, why), (3, why)]


def test_a_run_delivered_twice_counts_once(tmp_path):
    kwargs = {
        "start": "2024-02-01T00:00:00",
        "end": "2024-02-20T00:00:00",
        "submitted": "2024-02-21T05:47:00Z",
    }
    body = {"part_0_0001.csv": ea_csv(("02/01/2024", "1.00"))}
    first = azure_run(tmp_path, REAL, "0f6c7a0e-1111", body, **kwargs)
    azure_run(tmp_path, "zz-copied/0f6c7a0e-1111", "0f6c7a0e-1111", body, **kwargs)
    original, copy = exports.discover_runs(tmp_path, RULE)
    assert (original.manifest_path, original.rejected_reason) == (first / "manifest.json", None)
    assert copy.rejected_reason == (
        f"a copy of export run 0f6c7a0e-1111 at {first / 'manifest.json'}"
    )


def _three_blob_month(landing: Path) -> None:
    """One run of three blobs, a line of the second and of the third not a decimal."""
    azure_run(
        landing, "cost-exports/ea/ea-actualcost-daily/20240101-20240131/202402050400/jan", "jan",
        {
            "part_0_0001.csv": ea_csv(("01/02/2024", "1.00"), ("01/03/2024", "2.00")),
            "part_0_0002.csv": ea_csv(("01/04/2024", "3.00"), ("01/05/2024", "x"), ("01/06/2024", "4.00")),
            "part_0_0003.csv": ea_csv(("01/07/2024", "5.00"), ("01/08/2024", "6.00"), ("01/09/2024", "y")),
        },
        start="2024-01-01T00:00:00", end="2024-01-31T00:00:00", submitted="2024-02-05T04:00:00Z",
    )  # fmt: skip


def _lake_and_quarantine_lines(spark, ctx) -> tuple[set, set]:
    from inference_ledger import lake

    def lines(df):
        return {(Path(r[0]).name, r[1]) for r in df.select("source_file", "line_number").collect()}

    quarantine = spark.read.parquet(lake.run_path(ctx.lake_dir, ctx.run_id, "quarantine"))
    return lines(lake.read_table(spark, ctx.lake_dir, "billing_lines")), lines(quarantine)


EXPECTED_LINES = (
    {("part_0_0001.csv", 2), ("part_0_0001.csv", 3), ("part_0_0002.csv", 2),
     ("part_0_0002.csv", 4), ("part_0_0003.csv", 2), ("part_0_0003.csv", 3)},
    {("part_0_0002.csv", 3), ("part_0_0003.csv", 4)},
)  # fmt: skip


def _lake_writes(monkeypatch) -> list[str]:
    from inference_ledger import lake
    from inference_ledger.steps import ingest_billing

    calls: list[str] = []
    for name in ("write_table", "replace_partitions"):
        real = getattr(lake, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            if "billing_lines" in args:
                calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(ingest_billing.lake, name, spy)
    return calls


def _ingest_three_blobs(spark, tmp_path, monkeypatch) -> list[str]:
    """Ingest `_three_blob_month`; its lake and quarantine line numbers are checked here, and
    how the lake was written (a move or a write) is returned."""
    _three_blob_month(tmp_path / "landing")
    ctx, _ = _billing_run(tmp_path / "landing", tmp_path / "home", monkeypatch)
    writes = _lake_writes(monkeypatch)
    ingest_landing(spark, ctx)
    assert _lake_and_quarantine_lines(spark, ctx) == EXPECTED_LINES
    return writes


def test_line_numbers_as_read_are_final_and_the_loaded_folders_become_the_lake(
    spark, tmp_path, monkeypatch
):
    """Each blob is read in a partition of its own (as large ones are), so every line number
    is final as read and the loaded month's folder is moved into the lake instead of written
    again."""
    from inference_ledger.ingest import billing

    monkeypatch.setattr(billing, "APART_MEAN_BYTES", 1)
    assert _ingest_three_blobs(spark, tmp_path, monkeypatch) == ["replace_partitions"]


def test_blobs_read_in_one_partition_are_numbered_from_their_own_first_line(
    spark, tmp_path, monkeypatch
):
    """Packed into one partition (Spark's default for small files), the later blobs' numbers
    as read count from the partition's start: they are moved to each file's own, and the lake
    is written from the records, with the same numbers."""
    import contextlib

    from inference_ledger.ingest import billing

    @contextlib.contextmanager
    def one_partition(spark):
        confs = {
            "spark.sql.files.openCostInBytes": "0",
            "spark.sql.files.minPartitionNum": "1",
        }
        before = {k: spark.conf.get(k, None) for k in confs}
        for k, v in confs.items():
            spark.conf.set(k, v)
        try:
            yield
        finally:
            for k, v in before.items():
                spark.conf.unset(k) if v is None else spark.conf.set(k, v)

    monkeypatch.setattr(billing, "APART_MEAN_BYTES", 1)
    monkeypatch.setattr(billing, "one_file_per_partition", one_partition)
    assert _ingest_three_blobs(spark, tmp_path, monkeypatch) == ["write_table"]
