"""Ingest on tiny hand-built landing folders: every row accounted for, exact values."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import pytest

from inference_ledger.ingest import billing, exports, finance, usage
from inference_ledger.ingest import records as R
from inference_ledger.workload import WorkloadRules
from tests.billing_support import read_billing_rows
from tests.helpers import D, full_plan, lake_df

EA_HEADER = [
    "BillingAccountId",
    "BillingAccountName",
    "BillingPeriodStartDate",
    "BillingPeriodEndDate",
    "SubscriptionId",
    "SubscriptionName",
    "ResourceGroup",
    "Date",
    "ProductName",
    "MeterCategory",
    "MeterSubCategory",
    "MeterId",
    "MeterName",
    "MeterRegion",
    "UnitOfMeasure",
    "Quantity",
    "EffectivePrice",
    "CostInBillingCurrency",
    "BillingCurrencyCode",
    "ResourceLocation",
    "ConsumedService",
    "ResourceId",
    "Tags",
    "ChargeType",
    "PublisherType",
    "PricingModel",
]


def ea_row(
    day,
    cost,
    rg="rg-inference-eastus",
    tags='"workload": "inference"',
    charge="Usage",
    currency="USD",
    meter="ND96isr H100 v5",
):
    vals = {
        "BillingAccountId": "8611537",
        "BillingPeriodStartDate": "01/01/2024",
        "BillingPeriodEndDate": "01/31/2024",
        "SubscriptionId": "sub-1",
        "ResourceGroup": rg,
        "Date": day,
        "MeterCategory": "Virtual Machines",
        "MeterName": meter,
        "UnitOfMeasure": "1 Hour",
        "Quantity": "10",
        "CostInBillingCurrency": cost,
        "BillingCurrencyCode": currency,
        "ResourceLocation": "eastus",
        "ResourceId": f"/subscriptions/sub-1/resourceGroups/{rg}/x",
        "Tags": tags,
        "ChargeType": charge,
    }
    return vals


def write_run(
    landing: Path,
    run_id: str,
    submitted: str,
    rows: list[dict],
    gz=False,
    month="20240101-20240131",
    header=EA_HEADER,
):
    import csv
    import io

    run_dir = landing / "billing" / "azure" / "daily" / month / run_id
    run_dir.mkdir(parents=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header)
    w.writeheader()
    for r in rows:
        w.writerow(r)
    name = "part_0.csv.gz" if gz else "part_0.csv"
    data = buf.getvalue().encode()
    (run_dir / name).write_bytes(gzip.compress(data) if gz else data)
    manifest = {
        "exportConfig": {
            "exportName": "daily",
            "resourceId": "/billingAccounts/8611537",
            "type": "ActualCost",
        },
        "runInfo": {
            "runId": run_id,
            "submittedTime": submitted,
            "startDate": f"{month[:4]}-{month[4:6]}-{month[6:8]}T00:00:00Z",
            "endDate": f"{month[9:13]}-{month[13:15]}-{month[15:17]}T00:00:00Z",
        },
        "blobs": [{"blobName": name, "dataRowCount": len(rows)}],
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def fx(spark):
    return lake_df(
        spark,
        "fx_rates",
        [
            {
                "rate_date": date(2024, 1, d),
                "currency": "EUR",
                "usd_per_unit": D("1.1"),
                "source_file": "fx.csv",
            }
            for d in range(1, 32)
        ],
    )


def by_status(records):
    out = {}
    for r in records.collect():
        out.setdefault(r["status"], []).append(r.asDict())
    return out


def test_month_to_date_runs_newest_wins_and_bad_rows_quarantined(spark, tmp_path, fx):
    write_run(
        tmp_path,
        "run-a",
        "2024-01-10T06:00:00Z",
        [ea_row("01/02/2024", "100.00"), ea_row("01/03/2024", "50.00")],
    )
    write_run(
        tmp_path,
        "run-b",
        "2024-02-02T06:00:00Z",
        [
            ea_row("01/02/2024", "101.25"),
            ea_row("01/03/2024", "49.75", tags="", rg="rg-inference-westus"),  # resource-group rule
            ea_row("01/04/2024", "20.00", tags='"workload": "training"', rg="rg-training-x"),
            ea_row("01/04/2024", "5.00", tags="", rg="rg-shared-x", meter="Hot LRS"),  # other
            ea_row("01/05/2024", "10.00", currency="EUR"),
            ea_row("02/01/2024", "1.00"),  # outside the billing month
            ea_row("01/06/2024", "1,000.00"),  # thousands separator
            ea_row("01/06/2024", "NaN"),
            ea_row("01/07/2024", "3.00", charge="Mystery"),
            ea_row("31/01/2024", "3.00"),  # not MM/DD/YYYY
        ],
        gz=True,
    )
    runs = exports.discover_runs(tmp_path)
    assert [r.run_id for r in runs] == ["run-a", "run-b"]
    rows, runs = read_billing_rows(spark, runs)
    assert [r.rejected_reason for r in runs] == [None, None]
    records = billing.billing_records(rows, fx, WorkloadRules.load())
    got = by_status(records)
    assert len(got["superseded"]) == 2
    assert {r["source_file"] for r in got["superseded"]} == {str(runs[0].blobs[0][0])}
    loaded = sorted(got["loaded"], key=lambda r: (r["usage_date"], r["billed_cost"]))
    assert [
        (r["usage_date"].day, r["billed_cost_usd"], r["workload"], r["workload_rule"])
        for r in loaded
    ] == [
        (2, D("101.25"), "inference", "tag.workload"),
        (3, D("49.75"), "inference", "resource_group.rg-inference"),
        (4, D("5.00"), "other", "default"),
        (4, D("20.00"), "training", "tag.workload"),
        (5, D("11.000"), "inference", "tag.workload"),
    ]
    assert all(
        r["billing_month"] == "2024-01" and r["scope_id"] == "/billingAccounts/8611537"
        for r in loaded
    )
    reasons = sorted((r["line_number"], r["field"], r["reason"]) for r in got["quarantined"])
    assert reasons == [
        (7, "ChargePeriodStart", "charge date is outside the export's billing period"),
        (8, "BilledCost", "BilledCost / CostInBillingCurrency is not a decimal number"),
        (9, "BilledCost", "BilledCost / CostInBillingCurrency is not a decimal number"),
        (10, "ChargeCategory", "unknown ChargeType / ChargeCategory"),
        (
            11,
            "ChargePeriodStart",
            "charge date is not a date (MM/DD/YYYY, YYYY-MM-DD or ISO date-time)",
        ),
    ]
    assert all(
        r["source_format"] == "azure-ea" and r["fx_source"] in ("none", "fx_feed") for r in loaded
    )
    counts = {r["source_file"]: r for r in R.file_counts(records).collect()}
    for c in counts.values():
        assert (
            c["rows_read"]
            == c["rows_loaded"]
            + c["rows_quarantined"]
            + c["rows_superseded"]
            + c["rows_deduplicated"]
        )
    assert sum(c["rows_read"] for c in counts.values()) == 12


def test_missing_fx_rate_names_currency_and_date(spark, tmp_path, fx):
    from inference_ledger.fx import require_fx

    write_run(
        tmp_path, "run-a", "2024-01-10T06:00:00Z", [ea_row("01/02/2024", "1.00", currency="GBP")]
    )
    rows, _ = read_billing_rows(spark, exports.discover_runs(tmp_path))
    records = billing.billing_records(rows, fx, WorkloadRules.load())
    with pytest.raises(R.InputError, match="GBP on 2024-01-02"):
        require_fx(records, "billing/azure", "billing_currency", "usage_date")


def test_missing_required_column_is_an_error_naming_it(spark, tmp_path):
    folder = tmp_path / "finance" / "revenue"
    folder.mkdir(parents=True)
    (folder / "r.csv").write_text("entry_id,entry_version,revenue_date,product_line,currency\n")
    with pytest.raises(R.InputError, match=r"r\.csv: missing required column\(s\) amount"):
        finance.read_feed(spark, tmp_path, "revenue")


def _page(start, results):
    return {
        "object": "page",
        "data": [
            {"object": "bucket", "start_time": start, "end_time": start + 86400, "results": results}
        ],
        "has_more": False,
        "next_page": None,
    }


def _result(model, inp, out, cached=0, req=1, project="p1"):
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": inp,
        "output_tokens": out,
        "input_cached_tokens": cached,
        "num_model_requests": req,
        "project_id": project,
        "user_id": None,
        "api_key_id": None,
        "model": model,
        "batch": False,
        "service_tier": "default",
    }


def test_usage_redelivery_dedupe_conflict_and_quarantine(spark, tmp_path):
    day = tmp_path / "usage" / "openai" / "2024-01-02"
    day.mkdir(parents=True)
    t = 1704153600  # 2024-01-02T00:00:00Z
    page = _page(
        t, [_result("gpt-4o", 1000, 200, cached=100, req=3), _result("gpt-4o-mini", 50, 5)]
    )
    (day / "page-0001.json").write_text(json.dumps(page))
    (day / "page-0001-redelivered.json.gz").write_bytes(gzip.compress(json.dumps(page).encode()))
    conflict = _page(t, [_result("gpt-4o-mini", 60, 6)])
    (day / "page-0002.jsonl").write_text(json.dumps(conflict) + "\n" + "{not json\n")
    bad = _page(
        t, [_result("o1", 10, 1, cached=11, project="p2"), _result("o1", -1, 1, project="p3")]
    )
    (day / "page-0003.json").write_text(json.dumps(bad))
    import os

    # The conflicting pull is the newest one.
    os.utime(day / "page-0002.jsonl", (2_000_000_000, 2_000_000_000))
    records = usage.usage_records(usage.read_pages(spark, usage.usage_files(tmp_path)))
    got = by_status(records)
    loaded = sorted(
        (
            r["model"],
            r["input_tokens"],
            r["output_tokens"],
            r["input_cached_tokens"],
            r["num_model_requests"],
        )
        for r in got["loaded"]
    )
    assert loaded == [("gpt-4o", 1000, 200, 100, 3), ("gpt-4o-mini", 60, 6, 0, 1)]
    assert all(
        r["channel"] == "openai" and r["usage_date"] == date(2024, 1, 2) for r in got["loaded"]
    )
    assert len(got["deduplicated"]) == 1  # gpt-4o redelivered with the same numbers
    assert (
        len(got["superseded"]) == 2
    )  # both older gpt-4o-mini pulls lose to the newer conflicting one
    assert sorted(r["reason"] for r in got["quarantined"]) == [
        "cached tokens exceed input tokens",
        "input_tokens is negative",
        "malformed JSON",
    ]


def _csv(path: Path, header: str, *lines: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *lines]) + "\n")


def test_revenue_versions_and_settlement_supersession(spark, tmp_path, fx):
    _csv(
        tmp_path / "finance/revenue/a.csv",
        "entry_id,entry_version,revenue_date,product_line,amount,currency,description",
        "e1,1,2024-01-05,api,100.00,USD,first",
        "e1,2,2024-01-05,api,120.00,USD,restated",
        "e2,1,2024-01-06,api,-10.00,EUR,refund",
        "e3,1,2024-01-07,api,1e3,USD,bad",
    )
    _csv(
        tmp_path / "finance/revenue/b.csv",
        "entry_id,entry_version,revenue_date,product_line,amount,currency,description,extra",
        "e1,2,2024-01-05,api,120.00,USD,restated,x",
    )
    rec = by_status(finance.revenue_records(finance.read_feed(spark, tmp_path, "revenue"), fx))
    assert sorted((r["entry_id"], r["entry_version"], r["amount_usd"]) for r in rec["loaded"]) == [
        ("e1", 2, D("120.00")),
        ("e2", 1, D("-11.000")),
    ]
    assert [r["entry_version"] for r in rec["superseded"]] == [1]
    assert len(rec["deduplicated"]) == 1
    assert [(r["field"], r["reason"]) for r in rec["quarantined"]] == [
        ("amount", "amount is not a plain decimal number")
    ]

    h = "statement_id,supersedes_statement_id,agreement_id,direction,counterparty,period_start,period_end,reported_basis_amount,rate,amount,currency,statement_date,payment_date,reference"
    _csv(
        tmp_path / "finance/settlements/s.csv",
        h,
        "S1,,A,payable,P,2024-01-01,2024-04-01,1000,0.2,190.00,USD,2024-04-30,,",
        "S2,S1,A,payable,P,2024-01-01,2024-04-01,1000,0.2,195.00,USD,2024-05-02,,",
        "S3,S2,A,payable,P,2024-01-01,2024-04-01,1000,0.2,200.00,USD,2024-05-03,,",
        "S4,S9,A,payable,P,2024-01-01,2024-04-01,1000,0.2,1.00,USD,2024-05-03,,",
        "S5,,A,sideways,P,2024-01-01,2024-04-01,1000,0.2,1.00,USD,2024-05-03,,",
    )
    st = by_status(
        finance.settlement_records(finance.read_feed(spark, tmp_path, "settlements"), fx)
    )
    assert [(r["statement_id"], r["amount_usd"]) for r in st["loaded"]] == [("S3", D("200.00"))]
    assert sorted(r["statement_id"] for r in st["superseded"]) == ["S1", "S2"]
    assert sorted(r["reason"] for r in st["quarantined"]) == [
        "direction must be one of ['payable', 'receivable']",
        "supersedes unknown statement S9",
    ]


def test_billing_raw_record_and_lineage_are_the_delivered_text(spark, tmp_path, fx):
    """A line not loaded keeps its delivered fields as JSON in header order, empty fields left
    out, whichever header its file has (two headers read in one pass); lineage keeps the
    lineage columns with a value, whitespace-only ones left out."""
    bad = ea_row("01/03/2024", "5.00", currency="usd", rg='rg "a", b')
    bad.update({"EffectivePrice": "0.50", "PricingModel": "  "})
    good = ea_row("01/02/2024", "100.00")
    good["EffectivePrice"] = "10.00"
    write_run(tmp_path, "run-a", "2024-02-02T06:00:00Z", [good, bad])
    reordered = list(reversed(EA_HEADER))
    other = ea_row("02/04/2024", "7.00", charge="Bogus")
    other["BillingPeriodStartDate"], other["BillingPeriodEndDate"] = "02/01/2024", "02/29/2024"
    write_run(
        tmp_path,
        "run-b",
        "2024-03-02T06:00:00Z",
        [other],
        month="20240201-20240229",
        header=reordered,
    )
    rows, _ = read_billing_rows(spark, exports.discover_runs(tmp_path))
    got = {
        (r["billing_month"], r["line_number"]): r
        for r in billing.billing_records(rows, fx, WorkloadRules.load()).collect()
    }

    def delivered(values: dict, header: list[str]) -> str:
        kept = {h: values[h] for h in header if values.get(h)}
        return json.dumps(kept, separators=(",", ":"))

    assert sorted((k, r["status"], r["field"]) for k, r in got.items()) == [
        (("2024-01", 2), R.LOADED, None),
        (("2024-01", 3), R.QUARANTINED, "BillingCurrency"),
        (("2024-02", 2), R.QUARANTINED, "ChargeCategory"),
    ]
    assert got["2024-01", 2]["raw_record"] is None
    assert got["2024-01", 3]["raw_record"] == delivered(bad, EA_HEADER)
    assert got["2024-02", 2]["raw_record"] == delivered(other, reordered)
    assert json.loads(got["2024-01", 3]["raw_record"])["ResourceGroup"] == 'rg "a", b'
    assert got["2024-01", 2]["lineage"] == (
        '{"BillingPeriodStartDate":"01/01/2024","BillingPeriodEndDate":"01/31/2024",'
        '"EffectivePrice":"10.00"}'
    )
    assert json.loads(got["2024-01", 3]["lineage"]) == {
        "BillingPeriodStartDate": "01/01/2024",
        "BillingPeriodEndDate": "01/31/2024",
        "EffectivePrice": "0.50",
    }


def test_billing_checks_once_and_raw_record_only_for_lines_not_loaded(spark, tmp_path, fx):
    """Issue 16's properties of the billing records: each check appears once in the plan (one
    CASE names the first failure; status, reason and field read it), the raw CSV is not cached,
    and only lines that are not loaded carry their delivered text."""
    write_run(
        tmp_path,
        "run-a",
        "2024-02-02T06:00:00Z",
        [ea_row("01/02/2024", "100.00"), ea_row("01/03/2024", "5.00", currency="usd")],
    )
    rows, _ = read_billing_rows(spark, exports.discover_runs(tmp_path))
    records = billing.billing_records(rows, fx, WorkloadRules.load())
    plan = full_plan(spark, records)
    assert plan.count("^[A-Z]{3}$") == 1, plan  # the currency-code check
    assert "InMemoryRelation" not in plan and "InMemoryTableScan" not in plan
    got = sorted(
        (r["line_number"], r["status"], r["field"], r["raw_record"] is None)
        for r in records.collect()
    )
    assert got == [(2, R.LOADED, None, True), (3, R.QUARANTINED, "BillingCurrency", False)]
