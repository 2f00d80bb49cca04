"""Billing content as real producers deliver it, exact values: Microsoft's EA sample and the
FOCUS project's AI token bills (tests/data/real/, byte for byte), every Azure column variant,
FOCUS 1.3 and 1.4, a purchase whose charge period outlasts its billing month, Azure OpenAI
meter names and a header no dialect accepts."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from inference_ledger.ingest import billing, exports
from inference_ledger.ingest import records as R
from inference_ledger.quality.config import QualityConfig
from inference_ledger.quality.lake_suites import table_frame, table_suite, validate_frames
from inference_ledger.workload import WorkloadRules
from tests.billing_support import read_billing_rows
from tests.helpers import D, lake_df

REAL = Path(__file__).parent / "data" / "real"
EA = REAL / "EA_ActualCost_Small.csv"
AURA = REAL / "csp_served_frontier_model_first_party.csv"
SOLORA = REAL / "per_token_ai_model_api.csv"


def _csv(header: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def azure_run(
    landing: Path, body: bytes, rows: int, period="20230901-20230930", run="r1", scope="/scope/ea"
):
    """A hand-made export run (2024-04-01 manifest shape) holding one blob."""
    run_dir = landing / "billing/azure/exp" / period / run
    run_dir.mkdir(parents=True)
    (run_dir / "part_1.csv").write_bytes(body)
    first, last = period.split("-")
    doc = {
        "manifestVersion": "2024-04-01",
        "byteCount": len(body),
        "blobCount": 1,
        "dataRowCount": rows,
        "exportConfig": {"exportName": "exp", "resourceId": scope, "type": "ActualCost"},
        "runInfo": {
            "runId": run,
            "submittedTime": "2023-10-02T05:47:07Z",
            "startDate": f"{first[:4]}-{first[4:6]}-{first[6:]}T00:00:00Z",
            "endDate": f"{last[:4]}-{last[4:6]}-{last[6:]}T00:00:00Z",
        },
        "blobs": [{"blobName": "part_1.csv", "byteCount": len(body), "dataRowCount": rows}],
    }
    (run_dir / "manifest.json").write_text(json.dumps(doc))
    return run_dir / "part_1.csv"


def focus_run(landing: Path, name: str, body: bytes, provider="p", period="20250501-20250531"):
    run_dir = landing / "billing/focus" / provider / period / "run-1"
    run_dir.mkdir(parents=True)
    (run_dir / name).write_bytes(body)
    return run_dir / name


@pytest.fixture
def fx(spark):
    return lake_df(spark, "fx_rates", [])


def ingest(spark, landing: Path, fx) -> dict[str, list[dict]]:
    rows, _ = read_billing_rows(spark, exports.discover_runs(landing))
    records = billing.billing_records(rows, fx, WorkloadRules.load())
    by: dict[str, list[dict]] = {}
    for r in records.collect():
        by.setdefault(r["status"], []).append(r.asDict())
    for rs in by.values():
        rs.sort(key=lambda r: (r["source_file"], r["line_number"]))
    return by


def test_microsofts_ea_sample_loads_every_row(spark, tmp_path, fx):
    path = azure_run(tmp_path, EA.read_bytes(), 11)
    by = ingest(spark, tmp_path, fx)
    assert set(by) == {"loaded"}
    got = by["loaded"]
    assert [
        (r["line_number"], r["billed_cost"], r["workload"], r["workload_rule"]) for r in got
    ] == [
        (2, D("3.25"), "other", "default"),
        (3, D("0.00004"), "other", "default"),
        (4, D("0.000011139"), "other", "default"),
        (5, D("2.64"), "other", "default"),
        (6, D("0"), "other", "default"),
        (7, D("0"), "other", "default"),
        (8, D("0.000002"), "other", "default"),
        (9, D("0.21268368"), "other", "default"),
        (10, D("0"), "other", "default"),
        (11, D("1.9584"), "other", "default"),
        # 0.4838709677419368 has 16 decimal places; the lake keeps 10 (decimal(38,10)).
        (12, D("0.4838709677"), "other", "default"),
    ]
    raw = sum(Decimal(r["Cost"]) for r in csv.DictReader(io.StringIO(EA.read_text("utf-8-sig"))))
    assert raw == D("8.5450077867419368")
    assert sum(r["billed_cost_usd"] for r in got) == D("8.5450077867")
    purchase = got[0]
    assert (purchase["charge_category"], purchase["usage_date"], purchase["source_format"]) == (
        "Purchase",
        date(2023, 9, 21),
        "azure-ea",
    )
    assert json.loads(purchase["lineage"]) == {
        "BillingPeriodStartDate": "09/01/2023",
        "BillingPeriodEndDate": "09/30/2023",
        "ReservationId": "49ed0e4d-8e0c-4f1f-af2c-67c865056615",
        "ReservationName": "VM_RI_06-21-2023_18-56",
        "ProductOrderId": "49ed0e4d-8e0c-4f1f-af2c-67c865056615",
        "ProductOrderName": "Reserved VM Instance, Standard_B1s, UK South, 3 Years",
        "benefitId": "/providers/Microsoft.Capacity/reservationOrders/"
        "49ed0e4d-8e0c-4f1f-af2c-67c865056615/reservations/",
        "benefitName": "VM_RI_06-21-2023_18-56",
        "Term": "36",
        "Frequency": "Recurring",
        "PricingModel": "Reservation",
        "EffectivePrice": "3.25",
        "UnitPrice": "3.25",
        "PayGPrice": "0",
    }
    assert {(r["provider_name"], r["host_provider"], r["invoice_issuer"]) for r in got} == {
        ("Microsoft", "Microsoft", "Microsoft")
    }
    assert json.loads(got[1]["tags"])["databricks-environment"] == "true"
    assert all(r["source_file"] == str(path) for r in got)


def _focus_tokens(by):
    return [
        (
            r["line_number"],
            r["provider_name"],
            r["host_provider"],
            r["invoice_issuer"],
            r["model_id"],
            r["token_direction"],
            r["token_cache_action"],
            r["billed_cost_usd"],
            r["workload"],
            r["workload_rule"],
        )
        for r in by["loaded"]
    ]


def test_focus_ai_token_bills_are_inference_per_model_and_direction(spark, tmp_path, fx):
    focus_run(tmp_path, AURA.name, AURA.read_bytes(), provider="aura-web")
    focus_run(tmp_path, SOLORA.name, SOLORA.read_bytes(), provider="solora")
    by = ingest(spark, tmp_path, fx)
    assert set(by) == {"loaded"}
    rule = "ai.generative-ai-tokens"
    aura, solora = "aura-web.solora-jupiter-5", "solora-saturn-4.8"
    assert _focus_tokens(by) == [
        (2, "Aura Web", "Aura Web", "Aura Web", aura, "input", "uncached", D("2.25"), "inference", rule),
        (3, "Aura Web", "Aura Web", "Aura Web", aura, "output", None, D("2.25"), "inference", rule),
        (2, "Solora AI", "Solora AI", "Solora AI", solora, "input", "uncached", D("42.00"), "inference", rule),
        (3, "Solora AI", "Solora AI", "Solora AI", solora, "output", None, D("52.50"), "inference", rule),
    ]  # fmt: skip
    assert sum(r["billed_cost_usd"] for r in by["loaded"]) == D("99.00")
    first = by["loaded"][0]
    assert (
        first["source_format"],
        first["service_category"],
        first["service_subcategory"],
        first["sku_id"],
        first["usage_date"],
        first["billing_month"],
        first["consumed_quantity"],
        first["consumed_unit"],
    ) == (
        "focus-1.3",
        "AI and Machine Learning",
        "Generative AI",
        "aura-web.solora-jupiter-5-input",
        date(2025, 5, 1),
        "2025-05",
        D("3000000"),
        "Tokens",
    )
    lineage = json.loads(first["lineage"])
    assert json.loads(lineage["SkuPriceDetails"])["ModelFamily"] == "Solora Jupiter"
    assert (lineage["BillingPeriodStart"], lineage["PricingCategory"], lineage["ListCost"]) == (
        "2025-05-01T00:00:00Z",
        "Standard",
        "2.25",
    )


# ---------------------------------------------------------------- Azure column variants

EA_BASE = {
    "BillingAccountId": "8611537",
    "SubscriptionId": "sub-1",
    "Date": "09/04/2023",
    "MeterCategory": "Virtual Machines",
    "MeterName": "D2 v3/D2s v3",
    "UnitOfMeasure": "1 Hour",
    "Quantity": "24",
    "CostInBillingCurrency": "2.64",
    "BillingCurrencyCode": "EUR",
    "ChargeType": "Usage",
    "ResourceGroup": "rg-inference-weu",
}
# variant -> {canonical EA name: the variant's name}
EA_VARIANTS = {
    "CostInBillingCurrency": {},
    "Cost": {"CostInBillingCurrency": "Cost", "BillingCurrencyCode": "BillingCurrency"},
    "PreTaxCost": {
        "CostInBillingCurrency": "PreTaxCost",
        "BillingCurrencyCode": "Currency",
        "Date": "UsageDate",
        "SubscriptionId": "SubscriptionGuid",
    },
    "BillingCurrency": {"BillingCurrencyCode": "BillingCurrency"},
    "UsageDate": {"Date": "UsageDate"},
}


@pytest.fixture
def eur(spark):
    return lake_df(
        spark,
        "fx_rates",
        [
            {
                "rate_date": date(2023, 9, d),
                "currency": "EUR",
                "usd_per_unit": D("1.10"),
                "source_file": "fx.csv",
            }
            for d in range(1, 31)
        ],  # fmt: skip
    )


def test_every_azure_column_variant_loads_the_same_amounts(spark, tmp_path, eur):
    for i, (variant, renames) in enumerate(EA_VARIANTS.items()):
        row = {renames.get(k, k): v for k, v in EA_BASE.items()}
        row[renames.get("CostInBillingCurrency", "CostInBillingCurrency")] = f"{i + 1}.25"
        body = _csv(list(row), [row]).encode()
        azure_run(tmp_path, body, 1, run=f"r-{variant}", scope=f"/scope/{variant}")
    # MCA camelCase: the billed amount is costInBillingCurrency, never the pay-as-you-go
    # price cost; the export's own USD amount (costInUsd) is used and recorded as such.
    mca = {
        "billingAccountId": "acct-mca", "billingAccountName": "OpenAI", "SubscriptionId": "sub-9",
        "date": "09/05/2023", "meterCategory": "Virtual Machines", "meterName": "ND96isr H100 v5",
        "unitOfMeasure": "1 Hour", "quantity": "2", "costInBillingCurrency": "100.00",
        "paygCostInBillingCurrency": "127.00", "costInUsd": "108.37",
        "billingCurrencyCode": "EUR", "chargeType": "Usage", "resourceGroupName": "rg-x",
    }  # fmt: skip
    azure_run(tmp_path, _csv(list(mca), [mca]).encode(), 1, run="r-mca", scope="/scope/mca")
    by = ingest(spark, tmp_path, eur)
    assert set(by) == {"loaded"}
    got = {r["source_run_id"]: r for r in by["loaded"]}
    assert {
        run: (r["source_format"], r["billed_cost"], r["billing_currency"], r["billed_cost_usd"],
              r["usage_date"], r["sub_account_id"], r["fx_source"])
        for run, r in got.items()
    } == {
        "r-CostInBillingCurrency": ("azure-ea", D("1.25"), "EUR", D("1.375"), date(2023, 9, 4), "sub-1", "fx_feed"),
        "r-Cost": ("azure-ea", D("2.25"), "EUR", D("2.475"), date(2023, 9, 4), "sub-1", "fx_feed"),
        "r-PreTaxCost": ("azure-ea", D("3.25"), "EUR", D("3.575"), date(2023, 9, 4), "sub-1", "fx_feed"),
        "r-BillingCurrency": ("azure-ea", D("4.25"), "EUR", D("4.675"), date(2023, 9, 4), "sub-1", "fx_feed"),
        "r-UsageDate": ("azure-ea", D("5.25"), "EUR", D("5.775"), date(2023, 9, 4), "sub-1", "fx_feed"),
        "r-mca": ("azure-mca", D("100.00"), "EUR", D("108.37"), date(2023, 9, 5), "sub-9", "export"),
    }  # fmt: skip
    assert json.loads(got["r-mca"]["lineage"]) == {"paygCostInBillingCurrency": "127.00"}
    assert got["r-Cost"]["workload_rule"] == "resource_group.rg-inference"


def test_a_header_no_dialect_accepts_names_the_closest_and_what_it_lacks(spark, tmp_path):
    row = {k: v for k, v in EA_BASE.items() if k not in ("CostInBillingCurrency", "ChargeType")}
    path = azure_run(tmp_path, _csv(list(row), [row]).encode(), 1)
    with pytest.raises(R.InputError) as err:
        read_billing_rows(spark, exports.discover_runs(tmp_path))
    assert str(err.value) == (
        f"{path}: not a known billing export (header: BillingAccountId, SubscriptionId, Date, "
        "MeterCategory, MeterName, UnitOfMeasure, ...); the closest dialect is azure-ea, which "
        "needs column(s) Cost or CostInBillingCurrency or PreTaxCost, ChargeType"
    )
    with_cost = {**row, "Cost": "1.00"}
    shutil.rmtree(tmp_path / "billing")
    path = azure_run(tmp_path, _csv(list(with_cost), [with_cost]).encode(), 1)
    with pytest.raises(R.InputError) as err:
        read_billing_rows(spark, exports.discover_runs(tmp_path))
    assert str(err.value) == f"{path}: azure-ea file is missing required column(s) ChargeType"


# ---------------------------------------------------------------- FOCUS versions

FOCUS_12 = [
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType",
    "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "ConsumedQuantity", "ConsumedUnit", "EffectiveCost", "InvoiceId", "InvoiceIssuerName",
    "ProviderName", "PublisherName", "RegionId", "ResourceId", "ServiceCategory", "ServiceName",
    "SkuId", "SubAccountId", "Tags",
]  # fmt: skip
FOCUS_13 = [
    *FOCUS_12, "ServiceProviderName", "HostProviderName", "ServiceSubcategory", "SkuPriceDetails",
    "AllocatedMethodId", "AllocatedResourceId", "ContractApplied",
]  # fmt: skip
FOCUS_14 = [
    *[c for c in FOCUS_13 if c not in ("ProviderName", "PublisherName")],
    "InvoiceDetailId", "CommitmentProgramEligibility",
]  # fmt: skip


def focus_line(billed, effective, start, end, **extra):
    row = {
        "BilledCost": billed, "BillingAccountId": "ba-1", "BillingAccountName": "Acme",
        "BillingAccountType": "Billing Profile", "BillingCurrency": "USD",
        "BillingPeriodStart": "2026-02-01T00:00:00Z", "BillingPeriodEnd": "2026-03-01T00:00:00Z",
        "ChargeCategory": "Usage", "ChargeClass": "", "ChargeDescription": "d",
        "ChargeFrequency": "Usage-Based", "ChargePeriodStart": start, "ChargePeriodEnd": end,
        "ConsumedQuantity": "1", "ConsumedUnit": "Hours", "EffectiveCost": effective,
        "InvoiceId": "INV-26-02", "InvoiceIssuerName": "Microsoft", "ProviderName": "Microsoft",
        "PublisherName": "Microsoft", "RegionId": "eastus", "ResourceId": "/r/1",
        "ServiceCategory": "Compute", "ServiceName": "Virtual Machines", "SkuId": "sku-1",
        "SubAccountId": "sub-1", "Tags": "",
    }  # fmt: skip
    row.update(extra)
    return row


def test_focus_13_and_14_are_recorded_as_such_with_their_new_columns(spark, tmp_path, fx):
    spd = json.dumps({"ModelId": "gpt-4o", "TokenDirection": "Input", "TokenCacheAction": "Read"})
    ai = dict(
        ServiceProviderName="OpenAI", HostProviderName="Microsoft", ServiceCategory="AI and Machine Learning",
        ServiceSubcategory="Generative AI", ConsumedUnit="Tokens", ConsumedQuantity="2000000",
        SkuPriceDetails=spd, AllocatedMethodId="even-split", ContractApplied='{"Elements": []}',
        ServiceName="Azure AI Foundry",
    )  # fmt: skip
    rows13 = [focus_line("1.50", "1.50", "2026-02-03T00:00:00Z", "2026-02-04T00:00:00Z", **ai)]
    period = "20260201-20260228"
    focus_run(tmp_path, "f13.csv", _csv(FOCUS_13, rows13).encode(), "v13", period)
    row14 = {k: v for k, v in rows13[0].items() if k not in ("ProviderName", "PublisherName")}
    row14 |= {"InvoiceDetailId": "INV-26-02-7", "BilledCost": "2.50", "EffectiveCost": "2.50"}
    focus_run(tmp_path, "f14.csv", _csv(FOCUS_14, [row14]).encode(), "v14", period)
    rows12 = [focus_line("3.00", "3.00", "2026-02-05T00:00:00Z", "2026-02-06T00:00:00Z")]
    focus_run(tmp_path, "f12.csv", _csv(FOCUS_12, rows12).encode(), "v12", period)
    by = ingest(spark, tmp_path, fx)
    assert set(by) == {"loaded"}
    got = {r["source_format"]: r for r in by["loaded"]}
    assert {
        f: (r["provider_name"], r["host_provider"], r["invoice_issuer"], r["model_id"],
            r["token_direction"], r["token_cache_action"], r["billed_cost_usd"], r["workload"],
            r["workload_rule"])
        for f, r in got.items()
    } == {
        "focus-1.2": ("Microsoft", None, "Microsoft", None, None, None, D("3.00"), "other", "default"),
        "focus-1.3": ("OpenAI", "Microsoft", "Microsoft", "gpt-4o", "input", "read", D("1.50"),
                      "inference", "ai.generative-ai-tokens"),
        "focus-1.4": ("OpenAI", "Microsoft", "Microsoft", "gpt-4o", "input", "read", D("2.50"),
                      "inference", "ai.generative-ai-tokens"),
    }  # fmt: skip
    assert json.loads(got["focus-1.4"]["lineage"]) == {
        "BillingPeriodStart": "2026-02-01T00:00:00Z",
        "BillingPeriodEnd": "2026-03-01T00:00:00Z",
        "InvoiceId": "INV-26-02",
        "InvoiceDetailId": "INV-26-02-7",
        "SkuPriceDetails": spd,
        "ChargeFrequency": "Usage-Based",
        "ContractApplied": '{"Elements": []}',
        "AllocatedMethodId": "even-split",
    }


def test_a_one_year_purchase_loads_in_its_billing_month_and_passes_the_gate(spark, tmp_path, fx):
    """An upfront reservation bought in February for 2026-02-01..2027-02-01: BilledCost counts
    in February (the month invoiced), EffectiveCost 0 on the purchase (FOCUS: it amortises
    onto the usage it covers, as delivered). A correction of January invoiced in February is
    accounted on February's first day."""
    rows = [
        focus_line("8760.00", "0", "2026-02-01T00:00:00Z", "2027-02-01T00:00:00Z",
                   ChargeCategory="Purchase", ChargeFrequency="One-Time", ConsumedQuantity="",
                   ConsumedUnit="", CommitmentDiscountId="ri-1"),
        focus_line("0", "24.00", "2026-02-10T00:00:00Z", "2026-02-11T00:00:00Z",
                   CommitmentDiscountId="ri-1"),
        focus_line("-4.00", "-4.00", "2026-01-20T00:00:00Z", "2026-01-21T00:00:00Z",
                   ChargeClass="Correction"),
        # a row of another bill in this delivery: quarantined, never counted in February
        focus_line("7.00", "7.00", "2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z",
                   BillingPeriodStart="2026-03-01T00:00:00Z", BillingPeriodEnd="2026-04-01T00:00:00Z"),
    ]  # fmt: skip
    header = [*FOCUS_12, "CommitmentDiscountId"]
    path = focus_run(tmp_path, "f.csv", _csv(header, rows).encode(), "ri", "20260201-20260228")
    by = ingest(spark, tmp_path, fx)
    assert [
        (r["line_number"], r["charge_category"], r["usage_date"], r["billing_month"],
         r["billed_cost_usd"], r["effective_cost_usd"])
        for r in by["loaded"]
    ] == [
        (2, "Purchase", date(2026, 2, 1), "2026-02", D("8760.00"), D("0")),
        (3, "Usage", date(2026, 2, 10), "2026-02", D("0"), D("24.00")),
        (4, "Usage", date(2026, 2, 1), "2026-02", D("-4.00"), D("-4.00")),
    ]  # fmt: skip
    assert [(r["line_number"], r["field"], r["reason"]) for r in by["quarantined"]] == [
        (5, "BillingPeriodStart", "the row's billing period is not the export's billing period")
    ]
    assert str(by["loaded"][0]["charge_period_end"]) == "2027-02-01 00:00:00"
    cfg = QualityConfig.load()
    lines = lake_df(spark, "billing_lines", [
        {**{k: r[k] for k in r if k in billing.BILLING_COLUMNS}, "scope_id": "focus:ri"}
        for r in by["loaded"]
    ])  # fmt: skip
    frame = table_frame(lines, "billing_lines", cfg)
    [outcome] = validate_frames({"lake.billing_lines": frame},
                                {"lake.billing_lines": table_suite("billing_lines", cfg)})  # fmt: skip
    assert [(r.check_name, r.success) for r in outcome.checks if not r.success] == []
    assert "charge_in_billing_period" in {r.check_name for r in outcome.checks}
    assert all(r["source_file"] == str(path) for r in by["loaded"])


# ---------------------------------------------------------------- Azure OpenAI meter names

# (MeterCategory, MeterName, UnitOfMeasure) -> (model_id, direction, cache action, subcategory,
# workload rule). Meter names as Azure's retail price list and cost details write them.
METERS = [
    ("Azure OpenAI", "gpt-4o-0513 Inp regnl 1K Tokens", "1K Tokens",
     ("gpt-4o-0513", "input", "uncached", "Generative AI", "service.azure-openai")),
    ("Foundry Models", "GPT 5 outpt Glbl 1M Tokens", "1M Tokens",
     ("gpt-5", "output", None, "Generative AI", "service.azure-openai")),
    ("Foundry Models", "GPT 5 cchd Inpt Glbl 1M Tokens", "1M Tokens",
     ("gpt-5", "input", "read", "Generative AI", "service.azure-openai")),
    ("Cognitive Services", "gpt 4o 1120 cached Inp regnl Tokens", "1K Tokens",
     ("gpt-4o-1120", "input", "read", "Generative AI", "ai.generative-ai-tokens")),
    ("Cognitive Services", "gpt-4o-mini-0718-Outp-regnl", "1K Tokens",
     ("gpt-4o-mini-0718", "output", None, "Generative AI", "ai.generative-ai-tokens")),
    ("Azure OpenAI", "o3 mini 0131 Batch Outp Data Zone Tokens", "1K Tokens",
     ("o3-mini-0131", "output", None, "Generative AI", "service.azure-openai")),
    ("Azure OpenAI", "5.4 cd inp Gl 1M Tokens", "1M Tokens",
     ("5.4", "input", "read", "Generative AI", "service.azure-openai")),
    ("Azure OpenAI", "5 mini pp Inp Gl 1M Tokens", "1M Tokens",
     ("5-mini", "input", "uncached", "Generative AI", "service.azure-openai")),
    ("Azure OpenAI", "gpt 4o mini dev ft cchd inpt glbl Tokens", "1K Tokens",
     ("gpt-4o-mini", "input", "read", "Generative AI", "service.azure-openai")),
    # an embeddings meter names no direction: no model parsed, still AI token spend
    ("Foundry Models", "text-embedding-3-large Tokens", "1K Tokens",
     (None, None, None, None, "service.azure-openai")),
    ("Cognitive Services", "text-embedding-3-large Tokens", "1K Tokens",
     (None, None, None, None, "ai.ml-tokens")),
    # not token meters: nothing parsed, whatever the words
    ("Virtual Machines", "ND96isr H100 v5", "1 Hour", (None, None, None, None, "default")),
    ("Bandwidth", "Standard Data Transfer Out", "1 GB", (None, None, None, None, "default")),
    ("Storage", "Hot Input Output Operations", "10K", (None, None, None, None, "default")),
]  # fmt: skip


def _meter_lines(spark, landing: Path, fx, meters: list) -> tuple[list, list[dict]]:
    """One EUR 1.00 EA line per (MeterCategory, MeterName, UnitOfMeasure, _) of `meters`:
    what was read of each (as `meters` states it) and the loaded records."""
    rows = [
        {**EA_BASE, "ResourceGroup": "rg-ai", "MeterCategory": cat, "MeterName": name,
         "UnitOfMeasure": unit, "Date": f"09/{i + 1:02d}/2023", "CostInBillingCurrency": "1.00"}
        for i, (cat, name, unit, _) in enumerate(meters)
    ]  # fmt: skip
    azure_run(landing, _csv(list(EA_BASE), rows).encode(), len(rows))
    loaded = ingest(spark, landing, fx)["loaded"]
    got = [
        (r["service_name"], r["sku_description"], r["consumed_unit"],
         (r["model_id"], r["token_direction"], r["token_cache_action"], r["service_subcategory"],
          r["workload_rule"]))
        for r in loaded
    ]  # fmt: skip
    return got, loaded


def test_azure_openai_meter_names_give_model_direction_and_cache_action(spark, tmp_path, eur):
    got, loaded = _meter_lines(spark, tmp_path, eur, METERS)
    assert got == METERS
    assert [r["workload"] for r in loaded] == ["inference"] * 11 + ["other"] * 3
    assert {r["service_category"] for r in loaded[:11]} == {"AI and Machine Learning"}


# Cost details as Azure writes token meters today: the unit of measure is a block of tokens
# (`1K`, `1M`: the price sheet's and cost details' UnitOfMeasure), the meter category
# `Cognitive Services` (older) or `Foundry Models`, and meter names with run-together words
# (`BatchOutp`), context bands (`ShortCo`) and no `Tokens` at all (`Phi-4-reasoning-Output`).
BLOCK_UNIT_METERS = [
    ("Cognitive Services", "gpt 4.1 Inp regnl Tokens", "1K",
     ("gpt-4.1", "input", "uncached", "Generative AI", "ai.token-meter")),
    ("Cognitive Services", "gpt 4o 1120 cached Inp regnl Tokens", "1K",
     ("gpt-4o-1120", "input", "read", "Generative AI", "ai.token-meter")),
    ("Cognitive Services", "gpt 4o mini0718 BatchOutp DataZone Tokens", "1K",
     ("gpt-4o-mini0718", "output", None, "Generative AI", "ai.token-meter")),
    ("Foundry Models", "5.5 ShortCo inp Gl 1M Tokens", "1M",
     ("5.5", "input", "uncached", "Generative AI", "service.azure-openai")),
    ("Foundry Models", "Phi-4-reasoning-Output", "1M",
     ("phi-4-reasoning", "output", None, "Generative AI", "service.azure-openai")),
    ("Cognitive Services", "gpt 4o 0806 Inp Data Zone Tokens", "1M",
     ("gpt-4o-0806", "input", "uncached", "Generative AI", "ai.token-meter")),
    # embeddings bill tokens in one direction the meter does not name
    ("Cognitive Services", "text-embedding-3-large-glbl Tokens", "1K",
     (None, None, None, None, "ai.ml-token-meter-name")),
    # a block unit alone is no token meter: storage operations stay `other`
    ("Storage", "Hot Read Operations", "10K", (None, None, None, None, "default")),
    ("Cognitive Services", "S0 Text Records", "1K", (None, None, None, None, "default")),
]  # fmt: skip


def test_token_meters_in_block_units_are_inference_with_model_and_direction(spark, tmp_path, eur):
    got, loaded = _meter_lines(spark, tmp_path, eur, BLOCK_UNIT_METERS)
    assert got == BLOCK_UNIT_METERS
    assert [r["workload"] for r in loaded] == ["inference"] * 7 + ["other"] * 2
    # 7 lines of EUR 1.00 at 1.10: inference spend is never zero for a real Azure OpenAI bill
    assert sum(r["billed_cost_usd"] for r in loaded if r["workload"] == "inference") == D("7.70")


# Microsoft's FOCUS export (Cost Management `FocusCost`, dataVersion 1.0): the column set of
# its published metadata (tests/data/real/FocusCost_1.0.json, from the FinOps toolkit).
# The Azure meter is in x_SkuMeterName; there is no SkuPriceDetails.
MS_FOCUS_10 = [
    c["ColumnName"] for c in json.loads((REAL / "FocusCost_1.0.json").read_text())["Columns"]
]


def _ms_focus_row(day: int, cost: str, meter: str, service: str, category: str, unit: str):
    start = f"2023-09-{day:02d}T00:00:00Z"
    return {
        "BilledCost": cost, "EffectiveCost": cost, "BillingAccountId": "8611537",
        "BillingAccountName": "Contoso", "BillingCurrency": "EUR",
        "BillingPeriodStart": "2023-09-01T00:00:00Z", "BillingPeriodEnd": "2023-10-01T00:00:00Z",
        "ChargeCategory": "Usage", "ChargePeriodStart": start,
        "ChargePeriodEnd": f"2023-09-{day + 1:02d}T00:00:00Z", "ConsumedQuantity": "12.5",
        "ConsumedUnit": "Units", "PricingUnit": "Units", "x_PricingUnitDescription": unit,
        "ProviderName": "Microsoft", "InvoiceIssuerName": "Microsoft", "RegionId": "swedencentral",
        "ServiceCategory": category, "ServiceName": service, "SubAccountId": "/subscriptions/s1",
        "Tags": '{"team": "api"}', "x_ResourceGroupName": "rg-ai", "x_SkuMeterName": meter,
        "x_SkuDescription": f"{service} - {meter}", "x_SkuMeterCategory": "Foundry Models",
    }  # fmt: skip


def _ea_row(day: int, cost: str, meter: str):
    return {**EA_BASE, "ResourceGroup": "rg-ai", "MeterCategory": "Foundry Models",
            "MeterName": meter, "UnitOfMeasure": "1K", "Date": f"09/{day:02d}/2023",
            "CostInBillingCurrency": cost}  # fmt: skip


def _typed_run(landing, export, run, export_type, body, name="part_0_0001.csv", version=None):
    """A run in today's layout with a 2023-07-01-preview manifest of the given dataset type."""
    rel = f"{export}/20230901-20230930/202310020547/{run}"
    run_dir = landing / "billing/azure/exports" / rel
    run_dir.mkdir(parents=True)
    (run_dir / name).write_bytes(body)
    doc = {
        "exportConfig": {"exportName": export, "type": export_type, "dataVersion": version,
                         "resourceId": "/providers/Microsoft.Billing/billingAccounts/8611537"
                         f"/providers/Microsoft.CostManagement/exports/{export}"},
        "runInfo": {"runId": run, "submittedTime": "2023-10-02T05:47:07Z",
                    "startDate": "2023-09-01T00:00:00", "endDate": "2023-09-30T00:00:00"},
        "blobs": [{"blobName": f"exports/{rel}/{name}", "byteCount": len(body)}],
    }  # fmt: skip
    (run_dir / "manifest.json").write_text(json.dumps(doc))
    return run_dir / name


def test_a_focus_export_is_read_instead_of_the_same_scopes_actual_cost_export(spark, tmp_path, eur):
    """One billing account exporting September both ways (ActualCost and FocusCost, as FinOps
    hubs set it up): the month is read once, from the FOCUS export, whatever ran last; the
    actual-cost rows are superseded with the reason, never added."""
    meters = [("gpt 4.1 Inp regnl Tokens", "4.00"), ("gpt 4.1 Outp regnl Tokens", "6.00")]
    focus = _typed_run(
        tmp_path, "focus-daily", "f1", "FocusCost",
        _csv(MS_FOCUS_10, [
            _ms_focus_row(i + 4, cost, meter, "Azure OpenAI Service", "AI and Machine Learning",
                          "1K") for i, (meter, cost) in enumerate(meters)]).encode(),
        version="1.0r2",
    )  # fmt: skip
    actual = _typed_run(
        tmp_path, "actual-daily", "a1", "ActualCost",
        _csv(list(EA_BASE), [_ea_row(i + 4, c, m) for i, (m, c) in enumerate(meters)]).encode(),
    )  # fmt: skip
    runs = exports.discover_runs(tmp_path)
    assert sorted((r.export_name, r.dataset, r.not_read_reason) for r in runs) == [
        ("actual-daily", "ActualCost", None),
        ("focus-daily", "FocusCost", None),
    ]
    by = ingest(spark, tmp_path, eur)
    assert [(r["source_file"], r["reason"]) for r in by["superseded"]] == [
        (str(actual), "the scope's FocusCost export of the month is read instead of this"
         " ActualCost export")
    ] * 2  # fmt: skip
    assert [
        (r["source_file"], r["source_format"], r["model_id"], r["token_direction"],
         r["workload"], r["billed_cost_usd"])
        for r in by["loaded"]
    ] == [
        (str(focus), "focus-1.0", "gpt-4.1", "input", "inference", D("4.40")),
        (str(focus), "focus-1.0", "gpt-4.1", "output", "inference", D("6.60")),
    ]  # fmt: skip


def test_amortized_and_non_cost_exports_are_named_not_read(tmp_path):
    _typed_run(tmp_path, "amortized", "m1", "AmortizedCost", b"Cost\n1\n")
    _typed_run(tmp_path, "prices", "p1", "PriceSheet", b"x\n1\n")
    runs = {r.export_name: r for r in exports.discover_runs(tmp_path)}
    assert "AmortizedCost export" in runs["amortized"].not_read_reason
    assert runs["prices"].not_read_reason == (
        "a PriceSheet export is not cost data (the ledger reads ActualCost and FocusCost"
        " exports) -- not read"
    )


def test_a_hand_written_hubs_manifest_with_start_date_only_is_a_whole_month_run(tmp_path):
    """FinOps hubs' documented manifest template for re-ingesting files: runId and startDate,
    blobs without byte or row counts."""
    run_dir = tmp_path / "billing/azure/msexports/ea/20230901-20230930/202310050312/g-1"
    run_dir.mkdir(parents=True)
    (run_dir / "costs.csv").write_bytes(EA.read_bytes())
    (run_dir / "manifest.json").write_text(json.dumps({
        "blobCount": 1, "dataRowCount": 11,
        "exportConfig": {"exportName": "ea", "type": "ActualCost", "dataVersion": "2021-10-01",
                         "resourceId": "/providers/Microsoft.Billing/billingAccounts/8611537"
                                       "/providers/Microsoft.CostManagement/exports/ea"},
        "runInfo": {"runId": "g-1", "startDate": "2023-09-01T00:00:00"},
        "blobs": [{"blobName": "msexports/ea/20230901-20230930/202310050312/g-1/costs.csv"}],
    }))  # fmt: skip
    [run] = exports.discover_runs(tmp_path)
    assert (run.billing_month, run.covered_through, run.rejected_reason, run.dataset) == (
        "2023-09",
        date(2023, 9, 30),
        None,
        "ActualCost",
    )
    assert run.submitted_at.isoformat() == "2023-10-05T03:12:00+00:00"
    assert run.blobs == ((run_dir / "costs.csv", None),)


# The FOCUS project's AI samples name the token direction `TokenType` in some files (with
# CacheRead / CacheWrite values), give only Model* keys in others, and leave TokenCacheAction
# out where the SkuMeter says `Cached Input Tokens`.
FOCUS_VARIANT_SPD = [
    ("Input Tokens", '{"ModelId": "m-1", "TokenType": "Input"}', "Tokens",
     ("m-1", "input", None, "inference")),
    ("Cached Input Tokens", '{"ModelId": "m-1", "TokenDirection": "Input"}', "Tokens",
     ("m-1", "input", "read", "inference")),
    ("Cache Write Input Tokens", '{"ModelId": "m-1", "TokenDirection": "Input"}', "Tokens",
     ("m-1", "input", "write", "inference")),
    ("Output Tokens", '{"ModelId": "m-1", "TokenType": "Output"}', "Tokens",
     ("m-1", "output", None, "inference")),
    ("Cache Write Input Tokens", '{"ModelId": "m-1", "TokenType": "CacheWrite"}', "Tokens",
     ("m-1", "input", "write", "inference")),
    ("Cache Read Input Tokens", '{"ModelId": "m-1", "TokenType": "CacheRead"}', "Tokens",
     ("m-1", "input", "read", "inference")),
    # only Model* keys: the SkuMeter names the direction
    ("Output Tokens", '{"ModelId": "m-1", "ModelVersion": "3.0"}', "Tokens",
     ("m-1", "output", None, "inference")),
    ("Context Cache Storage", '{"ModelId": "m-1"}', "Token-Hours", ("m-1", None, None, "inference")),
]  # fmt: skip


def test_focus_token_type_and_cache_named_by_the_meter(spark, tmp_path, fx):
    header = AURA.read_text().splitlines()[0].split(",")
    base = next(csv.DictReader(io.StringIO(AURA.read_text())))
    rows = [
        {**base, "SkuMeter": meter, "SkuPriceDetails": spd, "ConsumedUnit": unit}
        for meter, spd, unit, _ in FOCUS_VARIANT_SPD
    ]
    focus_run(tmp_path, "variants.csv", _csv(header, rows).encode())
    by = ingest(spark, tmp_path, fx)
    assert [
        (r["model_id"], r["token_direction"], r["token_cache_action"], r["workload"])
        for r in by["loaded"]
    ] == [want for *_, want in FOCUS_VARIANT_SPD]


def test_focus_samples_that_say_token_type(spark, tmp_path, fx):
    """Two of the FOCUS project's samples name the token kind `TokenType` (CacheRead /
    CacheWrite; Input / Output), with no TokenDirection."""
    for provider, name, period in (
        ("aura", "foundation_model_via_csp_marketplace.csv", "20250501-20250531"),
        ("lattice", "ai_model_identity_b.csv", "20250101-20250131"),
    ):
        focus_run(tmp_path, name, (REAL / name).read_bytes(), provider, period)
    by = ingest(spark, tmp_path, fx)
    assert set(by) == {"loaded"}
    assert [
        (r["provider_name"], r["host_provider"], r["invoice_issuer"], r["model_id"],
         r["token_direction"], r["token_cache_action"], r["consumed_quantity"],
         r["billed_cost_usd"], r["workload"])
        for r in by["loaded"]
    ] == [
        ("Solora AI", "Solora AI", "Aura Web", "solora-neptune-5.0", "input", "read",
         D("50000000"), D("10.00"), "inference"),
        ("Solora AI", "Solora AI", "Aura Web", "solora-neptune-5.0", "input", "write",
         D("15000000"), D("37.50"), "inference"),
        ("LatticeScale", "LatticeScale", "LatticeScale", "latticescale.solora-reasoning-pro",
         "input", None, D("5000000.0"), D("15.0"), "inference"),
        ("LatticeScale", "LatticeScale", "LatticeScale", "latticescale.solora-reasoning-pro",
         "output", None, D("1500000.0"), D("22.5"), "inference"),
    ]  # fmt: skip


def test_a_focus_contract_commitment_file_beside_the_costs_is_a_run_of_its_own(tmp_path):
    """Found by its header (ContractCommitmentId, no BilledCost): read by
    ingest/contract_commitments.py, never as cost rows."""
    cost = focus_run(tmp_path, AURA.name, AURA.read_bytes(), provider="aura-web")
    commitments = cost.parent / "contract_commitment_scenario_1.csv"
    commitments.write_bytes((REAL / commitments.name).read_bytes())
    runs = sorted(exports.discover_runs(tmp_path), key=lambda r: r.run_id)
    assert [(r.run_id, r.dataset, r.blobs, r.not_read_reason) for r in runs] == [
        ("run-1", "FocusCost", ((cost, None),), None),
        ("run-1:FOCUS Contract Commitment", "FOCUS Contract Commitment", ((commitments, None),),
         None),
    ]  # fmt: skip


SPEC_AI = REAL / "focus-spec-ai"


def test_every_ai_billing_sample_of_the_focus_spec_loads_as_inference_per_model(
    spark, tmp_path, fx
):
    """All 19 AI billing samples of the FOCUS specification repository (tests/data/real/
    focus-spec-ai), each a FOCUS folder run dated by its own rows: every row loads, to the
    cent of the file; every token line is inference with its model, and every line billed in
    `Tokens` has a direction; purchases (prepayments) are not."""
    samples = sorted(SPEC_AI.glob("*/*.csv"))
    assert len(samples) == 19
    for path in samples:
        run = tmp_path / "billing/focus" / f"{path.parent.name}-{path.stem}" / "run-1"
        run.mkdir(parents=True)
        (run / path.name).write_bytes(path.read_bytes())
    by = ingest(spark, tmp_path, fx)
    assert set(by) == {"loaded"}
    loaded = by["loaded"]
    in_files = [
        r for p in samples for r in csv.DictReader(io.StringIO(p.read_text("utf-8"), newline=""))
    ]
    assert len(loaded) == len(in_files) == 61
    assert sum(r["billed_cost"] for r in loaded) == sum(Decimal(r["BilledCost"]) for r in in_files)
    tokens = [r for r in loaded if "token" in (r["consumed_unit"] or "").lower()]
    assert len(tokens) == 58
    assert all(r["workload"] == "inference" and r["model_id"] for r in tokens)
    assert all(r["token_direction"] for r in tokens if r["consumed_unit"] == "Tokens")
    assert {r["charge_category"] for r in loaded if r not in tokens} == {"Purchase"}
    assert {r["workload"] for r in loaded if r not in tokens} == {"other"}


def test_microsofts_ea_sample_moved_into_the_lake_keeps_its_line_numbers(
    spark, tmp_path, monkeypatch
):
    """Read in a partition of its own, as a large export is (billing.reads_apart), the real
    sample's line numbers are final as read and its loaded month folder is moved into the lake:
    lines 2-12 and the same billed cost as the row-by-row reading above."""
    from inference_ledger import lake
    from inference_ledger.run.context import RunContext
    from inference_ledger.settings import Settings
    from inference_ledger.steps import ingest_billing
    from inference_ledger.steps.ingest import ingest_landing

    monkeypatch.setattr(billing, "APART_MEAN_BYTES", 1)
    moved = []
    real_move = lake.replace_partitions
    monkeypatch.setattr(
        ingest_billing.lake,
        "replace_partitions",
        lambda *a, **k: moved.append(a[3]) or real_move(*a, **k),
    )
    azure_run(tmp_path / "landing", EA.read_bytes(), 11)
    settings = Settings(home=tmp_path / "home", database_url=None, spark_master="local[2]")
    ctx = RunContext(
        run_id="r", landing=tmp_path / "landing", settings=settings, sources=("billing",)
    )
    ingest_landing(spark, ctx)
    assert moved == ["billing_lines"]
    got = lake.read_table(spark, ctx.lake_dir, "billing_lines").orderBy("line_number").collect()
    assert [r["line_number"] for r in got] == list(range(2, 13))
    assert sum(r["billed_cost_usd"] for r in got) == D("8.5450077867")
