"""`ledger run` on real public billing files, delivered the way their producers deliver them.

The files in tests/data/real/ are byte-for-byte copies of Microsoft's and the FOCUS project's
published samples (see tests/data/real/README.md). Here they are laid out as Cost Management
writes exports today (`<root>/<export>/<YYYYMMDD-YYYYMMDD>/<YYYYMMDDHHMM>/<run-guid>/`), with
one month-to-date run per manifest shape (`2023-07-01-preview`: blobs with byte counts only;
`2024-04-01`: row counts too), as FOCUS folder runs, and with a stray file no manifest claims.
Every figure is what the files themselves add up to.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.cli_baseline import database_on
from tests.reliability_support import current_ledger, query

REAL = Path(__file__).parent / "data" / "real"
EA = REAL / "EA_ActualCost_Small.csv"
EA_TOTAL = Decimal("8.5450077867419368")  # the sum of the sample's 11 `Cost` values
# Money is kept to 10 decimal places from file to mart (DecimalType(38,10) / numeric(38,10)):
# the sample's one 16-place amount (0.4838709677419368) is rounded half-up at the 10th place.
EA_TOTAL_PUBLISHED = Decimal("8.5450077867")
SCOPE = "/providers/Microsoft.Billing/billingAccounts/8611537"
EXPORT = "ea-actualcost-daily"
EXPORT_ID = f"{SCOPE}/providers/Microsoft.CostManagement/exports/{EXPORT}"
CONTAINER_ROOT = "cost-exports/ea"  # blob names in manifests are container paths
FOCUS_FILES = {
    "aura-web": "csp_served_frontier_model_first_party.csv",
    "solora-ai": "per_token_ai_model_api.csv",
}

pytestmark = pytest.mark.slow


def _first_rows(path: Path, n: int) -> bytes:
    """The file's header and first n data rows, as the export wrote them (BOM, CRLF kept)."""
    text = path.read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows[: n + 1])
    return out.getvalue().encode("utf-8")


def _export_run(
    landing: Path,
    export_time: str,
    run_id: str,
    body: bytes,
    name: str,
    shape: str,
    rows: int,
    export: str = EXPORT,
    export_type: str = "ActualCost",
) -> Path:
    period = "20230901-20230930"
    rel = f"{export}/{period}/{export_time}/{run_id}"
    run_dir = landing / "billing" / "azure" / CONTAINER_ROOT / rel
    run_dir.mkdir(parents=True)
    (run_dir / name).write_bytes(body)
    blob = {"blobName": f"{CONTAINER_ROOT}/{rel}/{name}", "byteCount": len(body)}
    doc = {
        "exportConfig": {
            "exportName": export,
            "resourceId": f"{SCOPE}/providers/Microsoft.CostManagement/exports/{export}",
            "dataVersion": "2021-10-01",
            "apiVersion": "2023-07-01-preview",
            "type": export_type,
            "timeFrame": "MonthToDate",
            "granularity": "Daily",
        },
        "deliveryConfig": {
            "partitionData": True,
            "dataOverwriteBehavior": "CreateNewReport",
            "fileFormat": "Csv",
            "containerUri": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa",
            "rootFolderPath": CONTAINER_ROOT,
        },
        "runInfo": {
            "executionType": "Scheduled",
            "submittedTime": f"{export_time[:4]}-{export_time[4:6]}-{export_time[6:8]}T"
            f"{export_time[8:10]}:{export_time[10:]}:07.1234567Z",
            "runId": run_id,
            "startDate": "2023-09-01T00:00:00",
            "endDate": "2023-09-30T00:00:00",
        },
        "blobs": [blob],
    }
    if shape == "2024-04-01":
        blob["dataRowCount"] = rows
        doc = {
            "manifestVersion": "2024-04-01",
            "byteCount": len(body),
            "blobCount": 1,
            "dataRowCount": rows,
            **doc,
        }
    (run_dir / "manifest.json").write_text(json.dumps(doc, indent=2))
    return run_dir / name


# Azure OpenAI token meters as cost details bill them (UnitOfMeasure a block of tokens), on a
# subscription-scope export of October 2023: (MeterName, UnitOfMeasure, Cost).
TOKEN_LINES = [
    ("gpt 4o 0806 Inp Data Zone Tokens", "1K", "12.50"),
    ("gpt 4o 0806 Outp Data Zone Tokens", "1K", "37.50"),
    ("gpt 4o 1120 cached Inp regnl Tokens", "1K", "0.75"),
    ("5.4 opt Dz 1M Tokens", "1M", "20.00"),
]
TOKEN_SCOPE = "/subscriptions/0f0e0d0c-0000-4000-8000-00000000a1a1"


def _token_meter_run(landing: Path) -> Path:
    """One month-to-date run (2024-04-01 manifest) of Azure OpenAI lines, built on the EA
    sample's own header and first row."""
    text = EA.read_bytes().decode("utf-8")
    header, first = list(csv.reader(io.StringIO(text, newline="")))[:2]
    at = {c: i for i, c in enumerate(header)}
    rows = []
    for day, (meter, unit, cost) in enumerate(TOKEN_LINES, start=3):
        row = list(first)
        for col, value in {
            "Date": f"10/{day:02d}/2023", "BillingPeriodStartDate": "10/01/2023",
            "BillingPeriodEndDate": "10/31/2023", "MeterCategory": "Cognitive Services",
            "MeterSubCategory": "Azure OpenAI", "MeterName": meter, "UnitOfMeasure": unit,
            "Quantity": "1000", "Cost": cost, "ChargeType": "Usage", "Tags": "",
            "ResourceGroup": "rg-api", "PricingModel": "OnDemand", "Frequency": "UsageBased",
        }.items():  # fmt: skip
            row[at[col]] = value
        rows.append(row)
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows([header, *rows])
    body = out.getvalue().encode("utf-8")
    rel = "ai-actualcost/20231001-20231031/202311040300/9a8b7c6d-0000-4000-8000-0000000000b2"
    run_dir = landing / "billing" / "azure" / "cost-exports" / "sub" / rel
    run_dir.mkdir(parents=True)
    (run_dir / "part_0_0001.csv").write_bytes(body)
    blob = {"blobName": f"cost-exports/sub/{rel}/part_0_0001.csv", "byteCount": len(body),
            "dataRowCount": len(rows)}  # fmt: skip
    doc = {
        "manifestVersion": "2024-04-01", "byteCount": len(body), "blobCount": 1,
        "dataRowCount": len(rows),
        "exportConfig": {"exportName": "ai-actualcost", "type": "ActualCost",
                         "resourceId": f"{TOKEN_SCOPE}/providers/Microsoft.CostManagement"
                                       "/exports/ai-actualcost", "dataVersion": "2021-10-01"},
        "runInfo": {"runId": rel.rsplit("/", 1)[1], "submittedTime": "2023-11-04T03:00:11Z",
                    "startDate": "2023-10-01T00:00:00", "endDate": "2023-10-31T00:00:00"},
        "blobs": [blob],
    }  # fmt: skip
    (run_dir / "manifest.json").write_text(json.dumps(doc, indent=2))
    return run_dir / "part_0_0001.csv"


@pytest.fixture(scope="module")
def published(spark, pg_url, tmp_path_factory):
    root = tmp_path_factory.mktemp("real_deliveries")
    landing = root / "landing"
    older = _export_run(
        landing,
        "202309150312",
        "2f6c7a0e-3c1d-4f7e-9a55-0d6f6c9b1e01",
        _first_rows(EA, 6),
        "part_0_0001.csv",
        "2023-07-01-preview",
        6,
    )
    newer = _export_run(
        landing,
        "202310020547",
        "7b1e5d44-98a2-4c0b-b5f1-6f0e2d3c4a02",
        gzip.compress(EA.read_bytes(), mtime=0),
        "part_0_0001.csv.gz",
        "2024-04-01",
        11,
    )
    # The same billing account's amortized-cost export of the month: named, never read.
    amortized = _export_run(
        landing,
        "202310020611",
        "5d0f3b7c-1a2e-4c6d-8e9f-0a1b2c3d4e05",
        _first_rows(EA, 11),
        "part_0_0001.csv",
        "2023-07-01-preview",
        11,
        export="ea-amortizedcost-daily",
        export_type="AmortizedCost",
    )
    tokens = _token_meter_run(landing)
    focus = {}
    for provider, name in FOCUS_FILES.items():
        run_dir = landing / "billing" / "focus" / provider / "20250501-20250531" / "run-20250603"
        run_dir.mkdir(parents=True)
        focus[provider] = run_dir / name
        focus[provider].write_bytes((REAL / name).read_bytes())
    # FOCUS 1.3's Contract Commitment dataset delivered beside the cost file.
    commitments = focus["aura-web"].parent / "contract_commitment_scenario_1.csv"
    commitments.write_bytes((REAL / commitments.name).read_bytes())
    stray = landing / "billing" / "azure" / CONTAINER_ROOT / "costs-copied-by-hand.csv"
    stray.write_bytes(_first_rows(EA, 2))
    url = database_on(pg_url, "ledger_real_deliveries")
    from inference_ledger import cli

    out = io.StringIO()
    with current_ledger(root / "home", url), contextlib.redirect_stdout(out):
        code = cli.main(["run", "--landing", str(landing), "--as-of", "2025-07-01"])
    return {
        "code": code,
        "stdout": out.getvalue(),
        "url": url,
        "older": older,
        "newer": newer,
        "focus": focus,
        "stray": stray,
        "amortized": amortized,
        "commitments": commitments,
        "tokens": tokens,
        "home": root / "home",
    }


def test_the_run_succeeds_and_names_the_stray_file(published):
    assert published["code"] == 0, published["stdout"]
    assert f"warning: {published['stray']}: " in published["stdout"]


def test_every_file_is_accounted_for(published):
    rows = query(
        published["url"],
        "SELECT path, rows_read, rows_loaded, rows_superseded, rows_quarantined, warning"
        " FROM audit.input_files ORDER BY path",
    )
    by_path = {r[0]: r[1:] for r in rows}
    # The older month-to-date run is restated by the newer one: superseded, never added.
    assert by_path[str(published["older"])] == (6, 0, 6, 0, None)
    assert by_path[str(published["newer"])] == (11, 11, 0, 0, None)
    for path in published["focus"].values():
        assert by_path[str(path)] == (2, 2, 0, 0, None)
    assert by_path[str(published["tokens"])] == (4, 4, 0, 0, None)
    # The amortized export of the same account and month is named, not read, not added.
    *counts, warning = by_path[str(published["amortized"])]
    assert counts == [0, 0, 0, 0]
    assert warning.startswith("an AmortizedCost export: ")
    # FOCUS 1.3's Contract Commitment dataset is read: its three commitments are in euros and
    # the landing delivers no FX feed, so each waits in the quarantine for its rate.
    assert by_path[str(published["commitments"])] == (3, 0, 0, 3, None)
    reasons = query(
        published["url"],
        "SELECT line_number, field, reason FROM audit.quarantine WHERE path = %s ORDER BY 1",
        (str(published["commitments"]),),
    )
    assert [(line, field) for line, field, _ in reasons] == [
        (2, "BillingCurrency"),
        (3, "BillingCurrency"),
        (4, "BillingCurrency"),
    ]
    assert reasons[0][2].startswith("no FX rate to USD for EUR on 2025-12-01")
    read, loaded, superseded, quarantined, warning = by_path[str(published["stray"])]
    assert (read, loaded, superseded, quarantined) == (0, 0, 0, 0)
    assert "manifest" in warning


def test_the_lake_keeps_each_billing_lines_file_and_line(published):
    """So a lake gate failure can name the row, not only the file."""
    import pyarrow.parquet as pq

    lines = pq.read_table(
        published["home"] / "lake" / "billing_lines", columns=["source_file", "line_number"]
    ).to_pylist()
    by_file: dict[str, list[int]] = {}
    for r in lines:
        by_file.setdefault(r["source_file"], []).append(r["line_number"])
    # The header is line 1; the superseded older run's lines are not in the lake.
    assert sorted(by_file[str(published["newer"])]) == list(range(2, 13))
    for path in published["focus"].values():
        assert sorted(by_file[str(path)]) == [2, 3]
    assert str(published["older"]) not in by_file


def test_the_ea_sample_publishes_its_total_to_the_last_digit(published):
    rows = query(
        published["url"],
        "SELECT workload, provider, sum(billed_cost_usd)"
        " FROM marts.inference_spend_daily WHERE usage_date < '2023-10-01' GROUP BY 1, 2",
    )
    # No tag, resource group or meter of the sample is an inference or training workload.
    assert rows == [("other", "Microsoft", EA_TOTAL_PUBLISHED)]
    assert EA_TOTAL.quantize(Decimal("1e-10")) == EA_TOTAL_PUBLISHED


def test_focus_ai_token_bills_are_inference_spend_per_model_and_direction(published):
    rows = query(
        published["url"],
        "SELECT provider, model_id, token_direction, workload, billed_cost_usd"
        " FROM marts.inference_spend_daily WHERE usage_date >= '2025-01-01' ORDER BY 1, 2, 3",
    )
    assert rows == [
        ("Aura Web", "aura-web.solora-jupiter-5", "input", "inference", Decimal("2.25")),
        ("Aura Web", "aura-web.solora-jupiter-5", "output", "inference", Decimal("2.25")),
        ("Solora AI", "solora-saturn-4.8", "input", "inference", Decimal("42.00")),
        ("Solora AI", "solora-saturn-4.8", "output", "inference", Decimal("52.50")),
    ]
    summary = dict(
        query(
            published["url"],
            "SELECT period_label, inference_spend_usd FROM marts.quarterly_summary"
            " WHERE period_label IN ('2023-Q3', '2025-Q2')",
        )
    )
    assert summary == {"2023-Q3": Decimal("0"), "2025-Q2": Decimal("99.00")}


def test_azure_openai_meters_in_block_units_are_inference_spend(published):
    """Cost details bill Azure OpenAI in `1K` / `1M` blocks under `Cognitive Services`: the
    quarter's inference spend is those lines, per model and direction, to the cent."""
    rows = query(
        published["url"],
        "SELECT model_id, token_direction, workload, sum(billed_cost_usd)"
        " FROM marts.inference_spend_daily WHERE usage_date >= '2023-10-01'"
        " AND usage_date < '2023-11-01' GROUP BY 1, 2, 3 ORDER BY 1, 2",
    )
    assert rows == [
        ("5.4", "output", "inference", Decimal("20.00")),
        ("gpt-4o-0806", "input", "inference", Decimal("12.50")),
        ("gpt-4o-0806", "output", "inference", Decimal("37.50")),
        ("gpt-4o-1120", "input", "inference", Decimal("0.75")),
    ]
    [(spend,)] = query(
        published["url"],
        "SELECT inference_spend_usd FROM marts.quarterly_summary WHERE period_label = '2023-Q4'",
    )
    assert spend == Decimal("70.75")


def test_months_are_marked_provisional_or_final(published):
    rows = query(
        published["url"],
        "SELECT date_trunc('month', usage_date)::date, array_agg(DISTINCT month_status)"
        " FROM marts.inference_spend_daily GROUP BY 1 ORDER BY 1",
    )
    # The newest September run was submitted 29 hours after the month ended: Microsoft documents
    # up to 72 hours of latent charges, so the month is still provisional. The FOCUS folder runs
    # (submitted = their files' time, long after May) cover their whole billing period: final.
    # October's only run was submitted on November 4th, past the 72 hours: final.
    assert [(str(m), s) for m, s in rows] == [
        ("2023-09-01", ["provisional"]),
        ("2023-10-01", ["final"]),
        ("2025-05-01", ["final"]),
    ]
