"""The billed Azure resources (the fleet) and the true daily cost lines of each quarter.

Each workload's lines of a quarter add up exactly to the scenario's spend for it; the export
runs (billing.py) restate these lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from inference_ledger.periods import Quarter
from inference_ledger.sample.allocate import allocate_cents
from inference_ledger.sample.scenario import SCENARIO_QUARTERS
from inference_ledger.sample.sink import rng_for, uuid_from

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
