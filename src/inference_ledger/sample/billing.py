"""Azure Cost Management EA actual-cost exports (month-to-date runs + manifest.json).

For each billing month the newest run is the truth: its inference lines per quarter add up to
the scenario's inference spend exactly. Earlier runs of the month restate fewer days with
slightly different numbers, so adding runs up gives a wrong (larger) answer.
"""

from __future__ import annotations

import calendar
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from inference_ledger.periods import Quarter
from inference_ledger.sample.allocate import allocate_cents
from inference_ledger.sample.scenario import SCENARIO_QUARTERS
from inference_ledger.sample.sink import (
    Sink,
    csv_bytes,
    gzip_bytes,
    json_bytes,
    money,
    rng_for,
    uuid_from,
)

# Exactly the properties of schemas/inputs/azure_ea_cost_details.schema.json, in order.
EA_COLUMNS = (
    "BillingAccountId", "BillingAccountName", "BillingPeriodStartDate", "BillingPeriodEndDate",
    "SubscriptionId", "SubscriptionName", "ResourceGroup", "Date", "ProductName",
    "MeterCategory", "MeterSubCategory", "MeterId", "MeterName", "MeterRegion", "UnitOfMeasure",
    "Quantity", "EffectivePrice", "CostInBillingCurrency", "BillingCurrencyCode",
    "ResourceLocation", "ConsumedService", "ResourceId", "Tags", "ChargeType", "PublisherType",
    "PricingModel",
)  # fmt: skip

BILLING_ACCOUNT_ID = "8611537"
BILLING_ACCOUNT_NAME = "OpenAI OpCo, LLC"  # the comma makes CSV quoting matter
SCOPE = f"/providers/Microsoft.Billing/billingAccounts/{BILLING_ACCOUNT_ID}"
EXPORT_NAME = "ea-actualcost-daily"
EXPORT_SUFFIX = "providers/Microsoft.CostManagement/exports"
MAX_ROWS_PER_BLOB = 250
CENT = Decimal("0.01")
QTY = Decimal("0.000001")

REGIONS = (
    ("eastus", "US East"),
    ("westus3", "US West 3"),
    ("swedencentral", "SE Central"),
    ("southcentralus", "US South Central"),
    ("eastus2", "US East 2"),
)
# Resources per day at scale 1.0 (the scale knob multiplies these).
FLEET_BASE = {"inference": 8, "training": 4, "other": 3}
TAGS = {
    "inference": '"workload": "inference","team": "serving"',
    "training": '"workload": "training","team": "research"',
    "other": '"team": "platform","env": "prod"',
}


@dataclass(frozen=True)
class Sku:
    code: str
    category: str
    subcategory: str
    meter_name: str
    unit: str
    price: Decimal
    service: str  # ConsumedService, also the ARM provider namespace
    resource_type: str
    available_from: date | None = None
    retired_from: date | None = None
    token: tuple[str, str] | None = None  # (model, Input|Output) of a token meter


SKUS = {
    s.code: s
    for s in (
        Sku("h100", "Virtual Machines", "NDv5 Series", "ND96isr H100 v5", "1 Hour",
            Decimal("63.50"), "Microsoft.Compute", "virtualMachineScaleSets"),
        Sku("h200", "Virtual Machines", "NDv5 H200 Series", "ND96isr H200 v5", "1 Hour",
            Decimal("84.80"), "Microsoft.Compute", "virtualMachineScaleSets",
            available_from=date(2024, 10, 1)),
        Sku("a100", "Virtual Machines", "NDasrA100v4 Series", "ND96asr A100 v4", "1 Hour",
            Decimal("22.00"), "Microsoft.Compute", "virtualMachineScaleSets",
            retired_from=date(2025, 4, 1)),
        Sku("blob", "Storage", "Tiered Block Blob", "Hot LRS Data Stored", "1 GB/Month",
            Decimal("0.0184"), "Microsoft.Storage", "storageAccounts"),
        Sku("egress", "Bandwidth", "Rtn Preference: MGN", "Standard Data Transfer Out", "1 GB",
            Decimal("0.0500"), "Microsoft.Network", "applicationGateways"),
        # Azure OpenAI token meters (names as Cost Management writes them); only in a fleet
        # built with ai_tokens.
        Sku("gpt4o-in", "Azure OpenAI", "gpt-4o", "gpt-4o-0513 Inp regnl 1K Tokens",
            "1K Tokens", Decimal("0.0025"), "Microsoft.CognitiveServices", "accounts",
            token=("gpt-4o-0513", "Input")),
        Sku("gpt4o-out", "Azure OpenAI", "gpt-4o", "gpt-4o-0513 Outp regnl 1K Tokens",
            "1K Tokens", Decimal("0.0100"), "Microsoft.CognitiveServices", "accounts",
            token=("gpt-4o-0513", "Output")),
    )
}  # fmt: skip
TOKEN_SKUS = ("gpt4o-in", "gpt4o-out")


@dataclass(frozen=True)
class Resource:
    order: int
    workload: str  # the truth; the pipeline must recover it from tags / resource group
    sku: Sku
    region: str
    region_name: str
    subscription_id: str
    subscription_name: str
    resource_group: str
    resource_id: str
    tags: str
    weight: int

    def active(self, day: date) -> bool:
        s = self.sku
        return (s.available_from is None or s.available_from <= day) and (
            s.retired_from is None or day < s.retired_from
        )


@dataclass(frozen=True)
class Line:
    day: date
    resource: Resource
    cost: Decimal


@dataclass
class BillingStats:
    runs: int = 0
    rows: int = 0
    rows_effective: int = 0
    superseded_runs: int = 0
    untagged_inference_lines: int = 0
    quarantinable_rows: int = 0
    rejected_runs: int = 0
    rejected_rows: int = 0
    spend: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # quarter -> workload


def _sku_for(workload: str, i: int) -> str:
    if workload == "inference":
        return {2: "h200", 3: "a100"}.get(i % 4, "h100")
    if workload == "training":
        return "h200" if i % 3 == 2 else "h100"
    return "blob" if i % 2 == 0 else "egress"


def _untagged(workload: str, i: int) -> bool:
    # Untagged lines are recognisable only by their resource group (or not at all: `other`).
    return {"inference": i % 3 == 2, "training": i % 4 == 3, "other": i % 2 == 1}[workload]


def build_fleet(seed: int, scale: float, ai_tokens: bool = False) -> list[Resource]:
    """The resources billed each day. With `ai_tokens`, one Azure OpenAI account per token
    meter joins the inference fleet (appended: the other resources are unchanged; the
    workload totals stay exact, spread over more lines)."""
    rng = rng_for(seed, "billing", "fleet")
    subs = {
        "inference": (uuid_from(rng), "inference-prod"),
        "training": (uuid_from(rng), "training-prod"),
        "other": (uuid_from(rng), "shared-services"),
    }
    rg_prefix = {"inference": "rg-inference", "training": "rg-training", "other": "rg-shared"}
    name_prefix = {"inference": "inf", "training": "trn", "other": "shr"}
    fleet: list[Resource] = []
    for workload, base in FLEET_BASE.items():
        for i in range(max(1, round(base * scale))):
            region, region_name = REGIONS[i % len(REGIONS)]
            sku = SKUS[_sku_for(workload, i)]
            sub_id, sub_name = subs[workload]
            rg = f"{rg_prefix[workload]}-{region}"
            if sku.service == "Microsoft.Compute":
                name = f"vmss-{name_prefix[workload]}-{sku.code}-{region}-{i + 1:02d}"
            elif sku.service == "Microsoft.Storage":
                name = f"st{name_prefix[workload]}{region}{i + 1:02d}"
            elif sku.service == "Microsoft.CognitiveServices":
                name = f"aoai-{name_prefix[workload]}-{region}-{i + 1:02d}"
            else:
                name = f"agw-{name_prefix[workload]}-{region}-{i + 1:02d}"
            fleet.append(
                Resource(
                    order=len(fleet),
                    workload=workload,
                    sku=sku,
                    region=region,
                    region_name=region_name,
                    subscription_id=sub_id,
                    subscription_name=sub_name,
                    resource_group=rg,
                    resource_id=(
                        f"/subscriptions/{sub_id}/resourceGroups/{rg}/providers/"
                        f"{sku.service}/{sku.resource_type}/{name}"
                    ),
                    tags="" if _untagged(workload, i) else TAGS[workload],
                    weight=rng.randint(60, 140),
                )
            )
    if ai_tokens:
        fleet += _token_resources(rng, subs["inference"], len(fleet))
    return fleet


def _token_resources(rng, sub: tuple[str, str], order: int) -> list[Resource]:
    region, region_name = REGIONS[0]
    rg = f"rg-inference-{region}"
    rid = (
        f"/subscriptions/{sub[0]}/resourceGroups/{rg}/providers/"
        f"Microsoft.CognitiveServices/accounts/aoai-inf-{region}-01"
    )
    return [
        Resource(order + n, "inference", SKUS[code], region, region_name, sub[0], sub[1], rg, rid,
                 TAGS["inference"], rng.randint(60, 140))
        for n, code in enumerate(TOKEN_SKUS)
    ]  # fmt: skip


def _days(start: date, end: date) -> Iterator[date]:
    d = start
    while d < end:
        yield d
        d += timedelta(days=1)


def quarter_lines(q: Quarter, fleet: list[Resource], seed: int) -> list[Line]:
    """The true billing lines of a quarter; each workload sums exactly to its target."""
    targets = SCENARIO_QUARTERS[q.label]
    totals = {
        "inference": targets.inference_spend_usd,
        "training": targets.training_spend_usd,
        "other": targets.other_spend_usd,
    }
    rng = rng_for(seed, "billing", "lines", q.label)
    lines: list[Line] = []
    for workload, total in totals.items():
        cells = [
            (day, r)
            for day in _days(q.start, q.end)
            for r in fleet
            if r.workload == workload and r.active(day)
        ]
        # Spend ramps up ~30% across the quarter, with a little day-to-day noise.
        weights = [
            r.weight * (10_000 + 35 * (day - q.start).days) * rng.randint(90, 110)
            for day, r in cells
        ]
        amounts = allocate_cents(total, weights)
        lines.extend(Line(day, r, a) for (day, r), a in zip(cells, amounts, strict=True))
    lines.sort(key=lambda ln: (ln.day, ln.resource.order))
    return lines


def _us_date(d: date) -> str:
    return f"{d:%m/%d/%Y}"


def _row(line: Line, month_first: date, month_last: date) -> tuple[str, ...]:
    r, s = line.resource, line.resource.sku
    return (
        BILLING_ACCOUNT_ID,
        BILLING_ACCOUNT_NAME,
        _us_date(month_first),
        _us_date(month_last),
        r.subscription_id,
        r.subscription_name,
        r.resource_group,
        _us_date(line.day),
        f"{s.category} {s.subcategory} - {s.meter_name} - {r.region_name}",
        s.category,
        s.subcategory,
        _meter_id(s, r.region),
        s.meter_name,
        r.region_name,
        s.unit,
        str((line.cost / s.price).quantize(QTY)),
        str(s.price),
        money(line.cost),
        "USD",
        r.region,
        s.service,
        r.resource_id,
        r.tags,
        "Usage",
        "Azure",
        "OnDemand",
    )


def _meter_id(sku: Sku, region: str) -> str:
    # Meter ids are global constants in Azure, so they do not depend on the seed.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"azure-meter:{sku.code}:{region}"))


def _perturbed(line: Line, delta: Decimal) -> Line:
    return replace(line, cost=(line.cost * (1 + delta)).quantize(CENT))


@dataclass(frozen=True)
class Run:
    submitted: str  # ISO UTC
    execution_type: str
    time_frame: str
    through: date  # last usage day restated
    lines: list[Line]


def month_runs(truth: list[Line], first: date, last: date, month_index: int, seed: int):
    """Runs of one billing month, oldest first; the last one carries the true lines.

    Two month-to-date runs (provisional), then the close-of-month run on the 5th: Cost
    Management re-runs last month's export during the first five days, and a run more than
    72 hours after the month's end is final (config/billing_exports.yaml)."""
    rng = rng_for(seed, "billing", "runs", f"{first:%Y-%m}")
    next_month = last + timedelta(days=1)

    def stamp(d: date) -> str:
        # Derived from the run date, never the wall clock: reruns give identical manifests.
        hh, mm, ss = rng.randint(2, 6), rng.randint(0, 59), rng.randint(0, 59)
        return f"{d:%Y-%m-%d}T{hh:02d}:{mm:02d}:{ss:02d}Z"

    def partial(through: date) -> list[Line]:
        out = []
        for ln in truth:
            if ln.day > through or rng.random() < 0.03:  # late-arriving rows are missing
                continue
            if ln.day == through:  # the newest day is still incomplete
                out.append(_perturbed(ln, -Decimal(rng.randint(10, 35)) / 100))
            else:  # earlier days restated with small corrections
                out.append(_perturbed(ln, Decimal(rng.randint(-500, 500)) / 100_000))
        return out

    runs = [
        Run(stamp(first.replace(day=10)), "Scheduled", "MonthToDate", first.replace(day=9),
            partial(first.replace(day=9))),
        Run(stamp(first.replace(day=20)), "Scheduled", "MonthToDate", first.replace(day=19),
            partial(first.replace(day=19))),
    ]  # fmt: skip
    if month_index % 7 == 3:
        # A manual re-run after close restates a few lines of the scheduled final run.
        early = [
            _perturbed(ln, Decimal(rng.choice([-1, 1]) * rng.randint(100, 500)) / 100_000)
            if rng.random() < 0.3
            else ln
            for ln in truth
        ]
        runs.append(Run(stamp(next_month.replace(day=5)), "Scheduled", "TheLastBillingMonth",
                        last, early))  # fmt: skip
        runs.append(Run(stamp(next_month.replace(day=6)), "Manual", "TheLastBillingMonth",
                        last, truth))  # fmt: skip
    else:
        runs.append(Run(stamp(next_month.replace(day=5)), "Scheduled", "TheLastBillingMonth",
                        last, truth))  # fmt: skip
    return runs, rng


# The same charges in the other dialects the pipeline reads (DESIGN.md "Inputs").
MCA_COLUMNS = (
    "invoiceId", "billingAccountId", "billingAccountName", "billingPeriodStartDate",
    "billingPeriodEndDate", "SubscriptionId", "subscriptionName", "resourceGroupName", "date",
    "productName", "meterCategory", "meterSubCategory", "meterId", "meterName", "meterRegion",
    "unitOfMeasure", "quantity", "effectivePrice", "costInBillingCurrency", "billingCurrency",
    "costInUsd", "exchangeRatePricingToBilling", "resourceLocation", "consumedService",
    "ResourceId", "tags", "chargeType", "publisherType", "pricingModel",
)  # fmt: skip
# FOCUS as Azure's FocusCost export writes it: 1.2 (the default, `focus`), 1.3 (adds
# ServiceProviderName / HostProviderName / ContractApplied; ProviderName and PublisherName
# deprecated but kept) and 1.4 (drops them, adds InvoiceDetailId).
FOCUS_COLUMNS = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType",
    "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ConsumedQuantity",
    "ConsumedUnit", "EffectiveCost", "InvoiceId", "InvoiceIssuerName", "ProviderName",
    "PublisherName", "RegionId", "RegionName", "ResourceId", "ServiceCategory", "ServiceName",
    "ServiceSubcategory", "SkuId", "SkuPriceDetails", "SubAccountId", "SubAccountName", "Tags",
    "x_ResourceGroupName", "x_SkuDescription",
)  # fmt: skip
FOCUS_13_COLUMNS = (*FOCUS_COLUMNS, "ServiceProviderName", "HostProviderName", "ContractApplied")
FOCUS_14_COLUMNS = (
    *[c for c in FOCUS_13_COLUMNS if c not in ("ProviderName", "PublisherName")],
    "InvoiceDetailId",
)
FOCUS_DIALECTS = {
    "focus": (FOCUS_COLUMNS, "1.2-preview"),
    "focus-1.3": (FOCUS_13_COLUMNS, "1.3"),
    "focus-1.4": (FOCUS_14_COLUMNS, "1.4"),
}
# FOCUS ServiceCategory of the generated meter categories.
FOCUS_SERVICE_CATEGORIES = {
    "Virtual Machines": "Compute",
    "Storage": "Storage",
    "Bandwidth": "Networking",
    "Azure OpenAI": "AI and Machine Learning",
}
DIALECTS = ("ea", "mca", *FOCUS_DIALECTS)


def _mca_row(ea_row: tuple[str, ...]) -> tuple[str, ...]:
    e = dict(zip(EA_COLUMNS, ea_row, strict=True))
    return (
        f"G{e['BillingPeriodStartDate'][-4:]}{e['BillingPeriodStartDate'][:2]}", e["BillingAccountId"],
        e["BillingAccountName"], e["BillingPeriodStartDate"], e["BillingPeriodEndDate"],
        e["SubscriptionId"], e["SubscriptionName"], e["ResourceGroup"], e["Date"], e["ProductName"],
        e["MeterCategory"], e["MeterSubCategory"], e["MeterId"], e["MeterName"], e["MeterRegion"],
        e["UnitOfMeasure"], e["Quantity"], e["EffectivePrice"], e["CostInBillingCurrency"],
        e["BillingCurrencyCode"], e["CostInBillingCurrency"], "1", e["ResourceLocation"],
        e["ConsumedService"], e["ResourceId"], e["Tags"], e["ChargeType"], e["PublisherType"],
        e["PricingModel"],
    )  # fmt: skip


def _sku_price_details(sku: Sku | None) -> str:
    if sku is None or sku.token is None:
        return ""
    model, direction = sku.token
    details = {"ModelId": model, "TokenDirection": direction}
    if direction == "Input":  # FOCUS: no TokenCacheAction on tokens a response generated
        details["TokenCacheAction"] = "Uncached"
    return json.dumps(details, sort_keys=True, separators=(",", ":"))


def _focus_row(
    line: Line, ea_row: tuple[str, ...], first: date, last: date, dialect: str = "focus"
) -> tuple[str, ...]:
    """The EA row's charge in the dialect's FOCUS columns (FOCUS_DIALECTS)."""
    e = dict(zip(EA_COLUMNS, ea_row, strict=True))
    day, sku = line.day, line.resource.sku
    token = sku.token is not None
    row = {
        "BilledCost": e["CostInBillingCurrency"], "BillingAccountId": e["BillingAccountId"],
        "BillingAccountName": e["BillingAccountName"], "BillingAccountType": "Billing Account",
        "BillingCurrency": "USD", "BillingPeriodEnd": f"{last + timedelta(days=1):%Y-%m-%d}T00:00:00Z",
        "BillingPeriodStart": f"{first:%Y-%m-%d}T00:00:00Z", "ChargeCategory": "Usage",
        "ChargeClass": "", "ChargeDescription": e["ProductName"],
        "ChargePeriodEnd": f"{day + timedelta(days=1):%Y-%m-%d}T00:00:00Z",
        "ChargePeriodStart": f"{day:%Y-%m-%d}T00:00:00Z", "ConsumedQuantity": e["Quantity"],
        "ConsumedUnit": e["UnitOfMeasure"], "EffectiveCost": e["CostInBillingCurrency"],
        "InvoiceId": f"G{first:%Y%m}", "InvoiceIssuerName": "Microsoft",
        "ProviderName": "Microsoft", "PublisherName": "Microsoft",
        "RegionId": e["ResourceLocation"], "RegionName": e["MeterRegion"],
        "ResourceId": e["ResourceId"],
        "ServiceCategory": FOCUS_SERVICE_CATEGORIES.get(e["MeterCategory"], "Other"),
        "ServiceName": e["MeterCategory"],
        "ServiceSubcategory": "Generative AI" if token else "",
        "SkuId": e["MeterId"], "SkuPriceDetails": _sku_price_details(sku),
        "SubAccountId": e["SubscriptionId"], "SubAccountName": e["SubscriptionName"],
        "Tags": "{" + e["Tags"] + "}" if e["Tags"] else "",
        "x_ResourceGroupName": e["ResourceGroup"], "x_SkuDescription": e["MeterName"],
        "ServiceProviderName": "Microsoft", "HostProviderName": "Microsoft",
        "ContractApplied": "", "InvoiceDetailId": f"G{first:%Y%m}-{e['MeterId'][:8]}",
    }  # fmt: skip
    return tuple(row[c] for c in FOCUS_DIALECTS[dialect][0])


# Numeric columns Azure types as numbers in its Parquet exports.
PARQUET_NUMERIC = {"Quantity", "EffectivePrice", "CostInBillingCurrency", "quantity",
                   "effectivePrice", "costInBillingCurrency", "costInUsd", "BilledCost",
                   "EffectiveCost", "ConsumedQuantity"}  # fmt: skip


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:  # a deliberate fault: the reader must quarantine it, not load it
        return float("nan")


def parquet_bytes(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> bytes:
    """A Parquet blob: amounts as doubles (as the exports type them), the rest as strings."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {}
    for i, name in enumerate(header):
        values = [r[i] if r[i] != "" else None for r in rows]
        if name in PARQUET_NUMERIC:
            columns[name] = pa.array([_float(v) for v in values], pa.float64())
        else:
            columns[name] = pa.array(values, pa.string())
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf, compression="snappy")
    return buf.getvalue()


def _faulty(row: tuple[str, ...], cost: str) -> tuple[str, ...]:
    """A copy of an EA row whose cost cannot be parsed (it must be quarantined, not loaded)."""
    i = EA_COLUMNS.index("CostInBillingCurrency")
    return (*row[:i], cost, *row[i + 1 :])


LAYOUTS = ("cost-management", "legacy")
MANIFEST_SHAPES = ("2024-04-01", "2023-07-01-preview")
# The export's root folder (deliveryConfig.rootFolderPath) in the storage container that
# billing/azure (billing/focus/azure) mirrors: blob names in manifests start with it.
ROOT_FOLDER = "exports"


def _run_folder(top: str, run: Run, run_id: str, first: date, last: date, layout: str) -> str:
    """Cost Management's layout `<root>/<export>/<YYYYMMDD-YYYYMMDD>/<YYYYMMDDHHMM>/<run-guid>`,
    or the legacy one a level less and without the root: `<export>/<period>/<run-guid>`."""
    period = f"{first:%Y%m%d}-{last:%Y%m%d}"
    if layout == "legacy":
        return f"{top}/{EXPORT_NAME}/{period}/{run_id}"
    export_time = run.submitted[:16].replace("-", "").replace("T", "").replace(":", "")
    return f"{top}/{ROOT_FOLDER}/{EXPORT_NAME}/{period}/{export_time}/{run_id}"


def _manifest(run: Run, run_id: str, first: date, blobs: list[dict], rows: int, opts: dict) -> dict:
    """The run's manifest in the shape asked for. 2024-04-01 totals its blobs; the
    2023-07-01-preview shape has neither totals nor row counts (blobs carry byteCount only)."""
    legacy, focus = opts["layout"] == "legacy", opts["dialect"] in FOCUS_DIALECTS
    doc = {
        "exportConfig": {
            "exportName": EXPORT_NAME,
            # The export's own resource id (its scope is what precedes /providers/...).
            "resourceId": SCOPE if legacy else f"{SCOPE}/{EXPORT_SUFFIX}/{EXPORT_NAME}",
            "dataVersion": FOCUS_DIALECTS[opts["dialect"]][1] if focus else "2021-10-01",
            "apiVersion": "2023-07-01-preview",
            "type": "FocusCost" if focus else "ActualCost",
            "timeFrame": run.time_frame,
            "granularity": "Daily",
        },
        "deliveryConfig": {
            "partitionData": True,
            "dataOverwriteBehavior": "CreateNewReport",
            "fileFormat": "Parquet" if opts["parquet"] else "Csv",
            "compressionMode": "gzip" if opts["gz"] else "None",
            "rootFolderPath": f"billing/azure/{EXPORT_NAME}" if legacy else ROOT_FOLDER,
        },
        "runInfo": {
            "executionType": run.execution_type,
            "submittedTime": run.submitted,
            "runId": run_id,
            "startDate": f"{first:%Y-%m-%d}T00:00:00Z",
            "endDate": f"{run.through:%Y-%m-%d}T00:00:00Z",
        },
        "blobs": blobs,
    }
    if opts["manifest_shape"] == "2023-07-01-preview":
        for b in blobs:
            del b["dataRowCount"]
        return doc
    totals = {
        "byteCount": sum(b["byteCount"] for b in blobs),
        "blobCount": len(blobs),
        "dataRowCount": rows,
    }
    return {"manifestVersion": "2024-04-01", **totals, **doc}


def write_run(
    sink: Sink,
    run: Run,
    run_id: str,
    first: date,
    last: date,
    gz: bool,
    dialect: str = "ea",
    bad_rows: int = 0,
    overstate_rows: int = 0,
    parquet: bool = False,
    layout: str = "cost-management",
    manifest_shape: str = "2024-04-01",
) -> int:
    """One export run in the given dialect: `ea` and `mca` under billing/azure, `focus` (1.2,
    as Azure's FOCUS export writes it, with a manifest) under billing/focus/azure; in Cost
    Management's `layout` (or the `legacy` one) with a manifest of `manifest_shape`.
    `bad_rows` extra rows with unparseable costs (quarantined; totals unaffected);
    `overstate_rows` makes the manifest claim more than delivered (the run is rejected): more
    rows, or in the preview shape (no row counts) as many more bytes."""
    top = "billing/focus/azure" if dialect in FOCUS_DIALECTS else "billing/azure"
    folder = _run_folder(top, run, run_id, first, last, layout)
    rows = [_row(ln, first, last) for ln in run.lines]
    faults = ("1,234.56", "NaN", "12.34.56", "")
    rows += [_faulty(rows[i % len(rows)], faults[i % len(faults)]) for i in range(bad_rows) if rows]
    lines = list(run.lines) + [run.lines[i % len(run.lines)] for i in range(bad_rows) if run.lines]
    header = EA_COLUMNS
    if dialect == "mca":
        rows, header = [_mca_row(r) for r in rows], MCA_COLUMNS
    elif dialect in FOCUS_DIALECTS:
        rows = [_focus_row(ln, r, first, last, dialect) for ln, r in zip(lines, rows, strict=True)]
        header = FOCUS_DIALECTS[dialect][0]
    chunks = [rows[i : i + MAX_ROWS_PER_BLOB] for i in range(0, len(rows), MAX_ROWS_PER_BLOB)]
    blobs = []
    for n, chunk in enumerate(chunks or [[]]):
        # Legacy names are per run and relative; Cost Management's are container paths.
        name = f"part_{n + 1}_{run_id[:8]}" if layout == "legacy" else f"part_{n}_0001"
        if parquet:
            name += ".snappy.parquet"
            size = sink.write(f"{folder}/{name}", parquet_bytes(header, chunk))
        else:
            name += ".csv" + (".gz" if gz else "")
            data = csv_bytes(header, chunk)
            size = sink.write(f"{folder}/{name}", gzip_bytes(data) if gz else data)
        blob_name = name if layout == "legacy" else f"{folder.removeprefix(top + '/')}/{name}"
        blobs.append({"blobName": blob_name, "byteCount": size, "dataRowCount": len(chunk)})
    blobs[-1]["dataRowCount"] += overstate_rows
    if manifest_shape == "2023-07-01-preview":
        blobs[-1]["byteCount"] += overstate_rows
    opts = {"layout": layout, "dialect": dialect, "parquet": parquet, "gz": gz,
            "manifest_shape": manifest_shape}  # fmt: skip
    manifest = _manifest(run, run_id, first, blobs, len(rows) + overstate_rows, opts)
    sink.write(f"{folder}/manifest.json", json_bytes(manifest, indent=2))
    return len(rows)


def write_billing(
    sink: Sink,
    quarters: list[Quarter],
    seed: int,
    scale: float,
    dialect: str = "ea",
    faults: bool = False,
    parquet: bool = False,
    layout: str = "cost-management",
    manifest_shape: str = "2024-04-01",
    ai_tokens: bool = False,
) -> BillingStats:
    """With `faults`, some months get a final run with unparseable extra rows (quarantined)
    and a later re-run whose manifest overstates its rows (rejected: the final run stays).
    `layout` and `manifest_shape`: see write_run (LAYOUTS, MANIFEST_SHAPES)."""
    if dialect not in DIALECTS:
        raise ValueError(f"billing dialect must be one of {DIALECTS}, got {dialect!r}")
    if layout not in LAYOUTS or manifest_shape not in MANIFEST_SHAPES:
        raise ValueError(
            f"billing layout must be one of {LAYOUTS} and manifest shape one of "
            f"{MANIFEST_SHAPES}, got {layout!r}, {manifest_shape!r}"
        )
    shape = {"layout": layout, "manifest_shape": manifest_shape}
    fleet = build_fleet(seed, scale, ai_tokens)  # ai_tokens: Azure OpenAI token meters too
    stats = BillingStats()
    month_index = 0
    for q in quarters:
        lines = quarter_lines(q, fleet, seed)
        stats.spend[q.label] = {}
        for ln in lines:
            by_wl = stats.spend[q.label]
            by_wl[ln.resource.workload] = by_wl.get(ln.resource.workload, Decimal(0)) + ln.cost
        for m in range(3):
            first = date(q.year, q.start.month + m, 1)
            last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
            truth = [ln for ln in lines if first <= ln.day <= last]
            runs, rng = month_runs(truth, first, last, month_index, seed)
            for run_index, run in enumerate(runs):
                gz = (month_index + run_index) % 3 == 1
                final = run_index == len(runs) - 1
                bad = 2 if faults and final and month_index % 4 == 1 else 0
                n = write_run(
                    sink,
                    run,
                    uuid_from(rng),
                    first,
                    last,
                    gz,
                    dialect,
                    bad_rows=bad,
                    parquet=parquet,
                    **shape,
                )
                stats.runs += 1
                stats.rows += n
                stats.quarantinable_rows += bad
            stats.superseded_runs += len(runs) - 1
            if faults and month_index % 5 == 2:
                late = replace(runs[-1], submitted=f"{last + timedelta(days=9):%Y-%m-%d}T05:00:00Z",
                               execution_type="Manual")  # fmt: skip
                n = write_run(sink, late, uuid_from(rng), first, last, False, dialect,
                              overstate_rows=1, **shape)  # fmt: skip
                stats.runs += 1
                stats.rows += n
                stats.rejected_runs += 1
                stats.rejected_rows += n
            stats.rows_effective += len(truth)
            stats.untagged_inference_lines += sum(
                1 for ln in truth if ln.resource.workload == "inference" and not ln.resource.tags
            )
            month_index += 1
    return stats
