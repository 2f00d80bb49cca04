"""One billing line as an export row: Azure EA, MCA and FOCUS (1.2 to 1.4) columns, and the
Parquet blob a list of rows makes (amounts typed as Azure types them)."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from decimal import Decimal

from inference_ledger.sample.billing_fleet import Line, Sku
from inference_ledger.sample.sink import money

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
QTY = Decimal("0.000001")


def _us_date(d: date) -> str:
    return f"{d:%m/%d/%Y}"


def ea_row(line: Line, month_first: date, month_last: date) -> tuple[str, ...]:
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


def mca_row(ea_row: tuple[str, ...]) -> tuple[str, ...]:
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


def focus_row(
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


def faulty_row(row: tuple[str, ...], cost: str) -> tuple[str, ...]:
    """A copy of an EA row whose cost cannot be parsed (it must be quarantined, not loaded)."""
    i = EA_COLUMNS.index("CostInBillingCurrency")
    return (*row[:i], cost, *row[i + 1 :])
