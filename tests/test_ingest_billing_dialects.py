"""Billing dialects and month-to-date semantics on small hand-written exports, exact values."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import date
from pathlib import Path

import pytest

from inference_ledger.ingest import billing, exports
from inference_ledger.ingest import records as R
from inference_ledger.run.context import RunContext
from inference_ledger.steps.ingest import ingest_landing
from inference_ledger.workload import WorkloadRules
from tests.billing_support import read_billing_rows
from tests.helpers import D, lake_df

MCA_HEADER = [
    "invoiceId", "billingAccountId", "billingAccountName", "billingProfileId", "date",
    "SubscriptionId", "resourceGroupName", "meterCategory", "meterSubCategory", "meterId",
    "meterName", "meterRegion", "unitOfMeasure", "quantity", "effectivePrice",
    "costInBillingCurrency", "billingCurrency", "costInUsd", "exchangeRatePricingToBilling",
    "resourceLocation", "ResourceId", "tags", "chargeType", "pricingModel",
]  # fmt: skip
FOCUS_10 = [
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
    "ChargePeriodStart", "ConsumedQuantity", "ConsumedUnit", "EffectiveCost", "ProviderName",
    "RegionId", "ResourceId", "ServiceCategory", "ServiceName", "SkuId", "SubAccountId", "Tags",
    "x_ResourceGroupName",
]  # fmt: skip
FOCUS_12 = [
    *[c for c in FOCUS_10 if c != "ProviderName"],
    "ServiceProviderName",
    "InvoiceId",
    "x_Team",
]


def _csv(header, rows) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def _manifest(
    run_dir: Path, run_id: str, submitted: str, blobs: dict[str, int], export="x", scope="/scope/1"
):
    doc = {
        "exportConfig": {"exportName": export, "resourceId": scope, "type": "ActualCost"},
        "runInfo": {
            "runId": run_id,
            "submittedTime": submitted,
            "startDate": "2024-01-01T00:00:00Z",
            "endDate": "2024-01-31T00:00:00Z",
        },
        "blobs": [{"blobName": n, "dataRowCount": c} for n, c in blobs.items()],
    }
    (run_dir / "manifest.json").write_text(json.dumps(doc))


@pytest.fixture
def fx(spark):
    return lake_df(
        spark,
        "fx_rates",
        [
            {
                "rate_date": date(2024, 1, d),
                "currency": "EUR",
                "usd_per_unit": D("1.10"),
                "source_file": "fx.csv",
            }
            for d in range(1, 32)
        ],
    )


def ingest(spark, landing, fx):
    rows, runs = read_billing_rows(spark, exports.discover_runs(landing))
    records = billing.billing_records(rows, fx, WorkloadRules.load()).cache()
    by = {}
    for r in records.collect():
        by.setdefault(r["status"], []).append(r.asDict())
    return by, runs, records


def mca_row(day, cost, currency="EUR", usd="", charge="Usage", tags='"workload": "inference"'):
    return {
        "invoiceId": "G123",
        "billingAccountId": "acct-mca",
        "billingAccountName": "OpenAI",
        "date": day,
        "SubscriptionId": "sub-9",
        "resourceGroupName": "rg-inference-we",
        "meterCategory": "Virtual Machines",
        "meterName": "ND96isr H100 v5",
        "unitOfMeasure": "1 Hour",
        "quantity": "2.5",
        "costInBillingCurrency": cost,
        "billingCurrency": currency,
        "costInUsd": usd,
        "resourceLocation": "westeurope",
        "ResourceId": "/subscriptions/sub-9/x",
        "tags": tags,
        "chargeType": charge,
    }


def test_mca_maps_to_canonical_and_uses_its_own_usd_column(spark, tmp_path, fx):
    run = tmp_path / "billing/azure/mca-daily/20240101-20240131/r1"
    run.mkdir(parents=True)
    (run / "part_1.csv").write_text(
        _csv(
            MCA_HEADER,
            [
                mca_row("01/05/2024", "100.00", usd="108.37"),  # export's own USD wins, recorded
                mca_row("01/06/2024", "200.00"),  # no USD column value: FX feed (1.10)
                mca_row("01/07/2024", "-30.00", usd="-32.50", charge="Refund"),
            ],
        )
    )
    _manifest(run, "r1", "2024-02-02T03:00:00Z", {"part_1.csv": 3})
    by, _, _ = ingest(spark, tmp_path, fx)
    got = sorted(by["loaded"], key=lambda r: r["usage_date"])
    assert [
        (r["source_format"], r["billed_cost"], r["billed_cost_usd"], r["fx_source"], r["fx_rate"])
        for r in got
    ] == [
        ("azure-mca", D("100.00"), D("108.37"), "export", D("1.0837")),
        ("azure-mca", D("200.00"), D("220.0000"), "fx_feed", D("1.10")),
        ("azure-mca", D("-30.00"), D("-32.50"), "export", D("1.0833333333")),
    ]
    refund = got[2]
    assert (refund["charge_category"], refund["charge_class"]) == ("Purchase", "Correction")
    assert got[0]["resource_group"] == "rg-inference-we" and got[0]["workload"] == "inference"
    assert got[0]["billing_account_id"] == "acct-mca" and got[0]["sub_account_id"] == "sub-9"


def focus_row(
    start,
    end,
    billed,
    effective=None,
    category="Usage",
    klass="",
    provider="AWS",
    tags='{"workload": "inference"}',
    **extra,
):
    row = {
        "BilledCost": billed,
        "BillingAccountId": "123456789012",
        "BillingAccountName": "payer",
        "BillingCurrency": "USD",
        "BillingPeriodStart": "2024-01-01T00:00:00Z",
        "BillingPeriodEnd": "2024-02-01T00:00:00Z",
        "ChargeCategory": category,
        "ChargeClass": klass,
        "ChargeDescription": "p5.48xlarge",
        "ChargePeriodStart": start,
        "ChargePeriodEnd": end,
        "ConsumedQuantity": "24",
        "ConsumedUnit": "Hours",
        "EffectiveCost": effective if effective is not None else billed,
        "RegionId": "us-east-1",
        "ResourceId": "i-0abc",
        "ServiceCategory": "Compute",
        "ServiceName": "Amazon EC2",
        "SkuId": "SKU1",
        "SubAccountId": "acct-1",
        "Tags": tags,
        "x_ResourceGroupName": "",
    }
    if "ProviderName" in extra or "ServiceProviderName" in extra:
        pass
    row.update(extra)
    return row


def test_focus_10_and_12_with_corrections_and_x_columns(spark, tmp_path, fx):
    r10 = tmp_path / "billing/focus/aws/20240101-20240131/run-1"
    r10.mkdir(parents=True)
    (r10 / "focus.csv").write_text(
        _csv(
            FOCUS_10,
            [
                focus_row(
                    "2024-01-03T00:00:00Z",
                    "2024-01-04T00:00:00Z",
                    "500.25",
                    "480.00",
                    ProviderName="AWS",
                ),
                focus_row(
                    "2024-01-04T00:00:00Z",
                    "2024-01-05T00:00:00Z",
                    "-20.00",
                    category="Credit",
                    ProviderName="AWS",
                ),
                focus_row(
                    "2024-01-05T00:00:00Z",
                    "2024-01-06T00:00:00Z",
                    "-5.00",
                    klass="Correction",
                    ProviderName="AWS",
                ),
                focus_row(
                    "2024-01-05T00:00:00Z", "2024-01-05T00:00:00Z", "1.00", ProviderName="AWS"
                ),  # empty period
                focus_row(
                    "2024-01-05T00:00:00Z",
                    "2024-01-06T00:00:00Z",
                    "1.00",
                    category="Usagee",
                    ProviderName="AWS",
                ),
            ],
        )
    )
    r12 = tmp_path / "billing/focus/gcp/20240101-20240131/run-7"
    r12.mkdir(parents=True)
    (r12 / "focus.csv").write_text(
        _csv(
            FOCUS_12,
            [
                focus_row(
                    "2024-01-09T00:00:00Z",
                    "2024-01-10T00:00:00Z",
                    "70.00",
                    ServiceProviderName="Google Cloud",
                    InvoiceId="inv-1",
                    x_Team="serving",
                    ServiceName="Compute Engine",
                    tags='{"workload":"training"}',
                ),
            ],
        )
    )
    r11 = tmp_path / "billing/focus/oci/20240101-20240131/run-3"
    r11.mkdir(parents=True)
    focus_11 = [*FOCUS_10, "ServiceSubcategory", "SkuMeter"]
    (r11 / "focus.csv").write_text(_csv(focus_11, [
        focus_row("2024-01-11T00:00:00Z", "2024-01-12T00:00:00Z", "9.99", ProviderName="Oracle",
                  ServiceSubcategory="GPU", SkuMeter="BM.GPU.H100.8", ServiceName="Compute"),
    ]))  # fmt: skip
    by, runs, _ = ingest(spark, tmp_path, fx)
    assert sorted(r.scope_id for r in runs) == ["focus:aws", "focus:gcp", "focus:oci"]
    [oci] = [r for r in by["loaded"] if r["provider_name"] == "Oracle"]
    assert (oci["source_format"], oci["billed_cost_usd"], oci["sku_description"]) == (
        "focus-1.1",
        D("9.99"),
        "BM.GPU.H100.8",
    )
    got = sorted(
        (r for r in by["loaded"] if r["provider_name"] != "Oracle"),
        key=lambda r: (r["usage_date"], r["billed_cost"]),
    )
    assert [
        (
            r["source_format"],
            r["provider_name"],
            str(r["usage_date"]),
            r["charge_category"],
            r["charge_class"],
            r["billed_cost_usd"],
            r["effective_cost_usd"],
            r["workload"],
        )
        for r in got
    ] == [
        ("focus-1.0", "AWS", "2024-01-03", "Usage", None, D("500.25"), D("480.00"), "inference"),
        ("focus-1.0", "AWS", "2024-01-04", "Credit", None, D("-20.00"), D("-20.00"), "inference"),
        (
            "focus-1.0",
            "AWS",
            "2024-01-05",
            "Usage",
            "Correction",
            D("-5.00"),
            D("-5.00"),
            "inference",
        ),
        (
            # ServiceProviderName is a FOCUS 1.3 column (it replaced ProviderName): 1.3.
            "focus-1.3",
            "Google Cloud",
            "2024-01-09",
            "Usage",
            None,
            D("70.00"),
            D("70.00"),
            "training",
        ),
    ]
    assert json.loads(got[3]["x_columns"]) == {"x_ResourceGroupName": None, "x_Team": "serving"}
    assert sorted((r["line_number"], r["field"]) for r in by["quarantined"]) == [
        (5, "ChargePeriodEnd"),
        (6, "ChargeCategory"),
    ]


def test_focus_file_missing_a_mandatory_column_names_it(spark, tmp_path, fx):
    run = tmp_path / "billing/focus/oci/20240101-20240131/run-1"
    run.mkdir(parents=True)
    header = [c for c in FOCUS_10 if c != "EffectiveCost"]
    (run / "f.csv").write_text(",".join(header) + "\n")
    (run / "g.csv").write_text(",".join(header) + "\n")
    with pytest.raises(
        R.InputError, match=r"f\.csv: focus-1\.0 file is missing required column\(s\) EffectiveCost"
    ):
        read_billing_rows(spark, exports.discover_runs(tmp_path))


def test_parquet_export(spark, tmp_path, fx):
    run = tmp_path / "billing/azure/ea-parquet/20240101-20240131/r1"
    run.mkdir(parents=True)
    df = spark.createDataFrame(
        [
            (
                "8611537",
                "sub-1",
                "2024-01-02",
                "Virtual Machines",
                "ND96",
                "1 Hour",
                3.0,
                1234.56,
                "USD",
                "Usage",
                "rg-inference-x",
                "",
            )
        ],
        "BillingAccountId string, SubscriptionId string, Date string, MeterCategory string, MeterName string, "
        "UnitOfMeasure string, Quantity double, CostInBillingCurrency double, BillingCurrencyCode string, "
        "ChargeType string, ResourceGroup string, Tags string",
    )
    tmp = tmp_path / "pq"
    df.coalesce(1).write.parquet(str(tmp))
    part = next(tmp.glob("part-*.parquet"))
    os.replace(part, run / "part_1.snappy.parquet")
    _manifest(run, "r1", "2024-02-02T03:00:00Z", {"part_1.snappy.parquet": 1})
    by, _, _ = ingest(spark, tmp_path, fx)
    [row] = by["loaded"]
    assert (
        row["billed_cost_usd"],
        row["consumed_quantity"],
        row["line_number"],
        row["workload"],
    ) == (D("1234.56"), D("3.0"), 1, "inference")


def ea(day, cost):
    return {
        "BillingAccountId": "1",
        "SubscriptionId": "s",
        "Date": day,
        "MeterCategory": "Virtual Machines",
        "MeterName": "ND96",
        "UnitOfMeasure": "1 Hour",
        "Quantity": "1",
        "CostInBillingCurrency": cost,
        "BillingCurrencyCode": "USD",
        "ChargeType": "Usage",
        "ResourceGroup": "rg-inference-a",
        "Tags": "",
    }


EA_MIN = list(ea("01/01/2024", "0"))


def write_ea_run(landing, month, run_id, submitted, rows, declared=None, scope="/scope/1"):
    run = landing / f"billing/azure/daily/{month}/{run_id}"
    run.mkdir(parents=True)
    (run / "part_1.csv").write_text(_csv(EA_MIN, rows))
    _manifest(
        run,
        run_id,
        submitted,
        {"part_1.csv": len(rows) if declared is None else declared},
        scope=scope,
    )


def test_thirty_daily_runs_and_a_late_correction_give_the_last_run_not_the_sum(spark, tmp_path, fx):
    truth = {d: D(f"{100 + d}.{d:02d}") for d in range(1, 32)}
    for n in range(1, 31):  # run n on Jan n+1 restates Jan 1..n, numbers still settling
        rows = [
            ea(f"01/{d:02d}/2024", str(truth[d] - (D("1.00") if d == n else 0)))
            for d in range(1, n + 1)
        ]
        write_ea_run(
            tmp_path, "20240101-20240131", f"jan-{n:02d}", f"2024-01-{n + 1:02d}T04:00:00Z", rows
        )
    final = [ea(f"01/{d:02d}/2024", str(truth[d])) for d in range(1, 32)]
    write_ea_run(
        tmp_path,
        "20240101-20240131",
        "feb-01",
        "2024-02-01T04:00:00Z",
        final[:-1] + [ea("01/31/2024", "1.00")],
    )
    write_ea_run(tmp_path, "20240101-20240131", "feb-03-correction", "2024-02-03T09:00:00Z", final)
    by, _, records = ingest(spark, tmp_path, fx)
    loaded_total = sum(r["billed_cost_usd"] for r in by["loaded"])
    assert loaded_total == sum(truth.values()) == D("3600.96")
    assert {r["source_run_id"] for r in by["loaded"]} == {"feb-03-correction"}
    every_run = sum(r["billed_cost_usd"] or 0 for rs in by.values() for r in rs)
    assert every_run > 10 * loaded_total
    assert len(by["superseded"]) == sum(range(1, 31)) + 31
    counts = R.file_counts(records).collect()
    assert len(counts) == 32 and all(
        c["rows_read"] == c["rows_loaded"] + c["rows_superseded"] for c in counts
    )


def test_run_disagreeing_with_its_manifest_is_rejected_and_the_previous_run_stays(
    spark, tmp_path, fx
):
    write_ea_run(
        tmp_path, "20240101-20240131", "good", "2024-02-02T04:00:00Z", [ea("01/05/2024", "10.00")]
    )
    write_ea_run(
        tmp_path,
        "20240101-20240131",
        "short",
        "2024-02-03T04:00:00Z",
        [ea("01/05/2024", "12.00")],
        declared=2,
    )
    missing = tmp_path / "billing/azure/daily/20240101-20240131/lost"
    missing.mkdir(parents=True)
    _manifest(missing, "lost", "2024-02-04T04:00:00Z", {"part_1.csv": 1})
    by, runs, _ = ingest(spark, tmp_path, fx)
    reasons = {r.run_id: r.rejected_reason for r in runs}
    assert reasons == {
        "good": None,
        "short": "part_1.csv: manifest says 2 data rows, file has 1",
        "lost": "manifest lists blob(s) not delivered: part_1.csv",
    }
    assert [(r["source_run_id"], r["billed_cost_usd"]) for r in by["loaded"]] == [
        ("good", D("10.00"))
    ]
    [q] = by["quarantined"]
    assert q["reason"] == "export run rejected: part_1.csv: manifest says 2 data rows, file has 1"


def test_unknown_file_is_an_error_naming_it(spark, tmp_path, fx):
    run = tmp_path / "billing/focus/aws/20240101-20240131/run-1"
    run.mkdir(parents=True)
    (run / "notes.csv").write_text("hello,world\n1,2\n")
    with pytest.raises(R.InputError, match=r"notes\.csv: not a known billing export"):
        read_billing_rows(spark, exports.discover_runs(tmp_path))


def test_truncated_gzip_fails_naming_the_file(spark, tmp_path):
    import gzip

    from inference_ledger.settings import Settings

    landing = tmp_path / "landing"
    run = landing / "billing/azure/daily/20240101-20240131/r1"
    run.mkdir(parents=True)
    data = _csv(EA_MIN, [ea("01/02/2024", f"{i}.00") for i in range(1, 3000)]).encode()
    packed = gzip.compress(data)
    (run / "part_1.csv.gz").write_bytes(packed[: len(packed) // 2])
    _manifest(run, "r1", "2024-02-02T03:00:00Z", {"part_1.csv.gz": 2999})
    settings = Settings(home=tmp_path / "home", database_url=None, spark_master="local[2]")
    ctx = RunContext(run_id="r", landing=landing, settings=settings)
    with pytest.raises(
        R.InputError, match=r"part_1\.csv\.gz: cannot be read \(java\.io\.EOFException"
    ):
        ingest_landing(spark, ctx)
