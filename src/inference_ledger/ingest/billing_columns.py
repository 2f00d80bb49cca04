"""What each billing dialect calls its columns and values (billing.py describes the dialects):
the source names of each intermediate column, the ones a dialect requires, the columns each FOCUS
version introduced, the columns kept as lineage, and Azure values in FOCUS terms."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

# Intermediate column -> accepted source names, one table per dialect family (matched ignoring
# case; the first present wins). Azure names across dataset versions: Microsoft's cost-details
# field reference (EA 2024-08-01, MCA 2023-12-01-preview) and older exports (`Cost`,
# `PreTaxCost`, `UsageDate`, `SubscriptionGuid`, `Currency`).
AZURE_ALIASES: dict[str, list[str]] = {
    "account_id": ["BillingAccountId"],
    "account_name": ["BillingAccountName"],
    "sub_account_id": ["SubscriptionId", "SubscriptionGuid"],
    "resource_group": ["ResourceGroup", "ResourceGroupName"],
    "charge_start": ["Date", "UsageDate", "UsageDateTime"],
    "charge_end": [],
    "billing_period_start": [],
    "billing_period_end": [],
    "service_name": ["MeterCategory"],
    "service_category": [],
    "service_subcategory": [],
    "sku_id": ["MeterId"],
    "sku_description": ["MeterName"],
    "meter_name": ["MeterName"],
    "sku_price_details": [],
    "region": ["ResourceLocation", "MeterRegion"],
    "unit": ["UnitOfMeasure"],
    "quantity": ["Quantity", "UsageQuantity"],
    "billed_cost": ["CostInBillingCurrency", "Cost", "PreTaxCost"],
    "effective_cost": [],
    "currency": ["BillingCurrencyCode", "BillingCurrency", "Currency"],
    "usd_cost": ["CostInUsd"],
    "resource_id": ["ResourceId", "InstanceId"],
    "tags": ["Tags"],
    "charge_type": ["ChargeType"],
    "charge_category": [],
    "charge_class": [],
    "provider_name": [],
    "provider_name_legacy": [],
    "host_provider": [],
    "invoice_issuer": [],
    "contract_applied": [],
}
FOCUS_ALIASES: dict[str, list[str]] = {
    "account_id": ["BillingAccountId"],
    "account_name": ["BillingAccountName"],
    "sub_account_id": ["SubAccountId"],
    "resource_group": ["x_ResourceGroupName"],
    "charge_start": ["ChargePeriodStart"],
    "charge_end": ["ChargePeriodEnd"],
    "billing_period_start": ["BillingPeriodStart"],
    "billing_period_end": ["BillingPeriodEnd"],
    "service_name": ["ServiceName"],
    "service_category": ["ServiceCategory"],
    "service_subcategory": ["ServiceSubcategory"],
    "sku_id": ["SkuId"],
    "sku_description": ["x_SkuDescription", "SkuMeter", "ChargeDescription"],
    # Microsoft's FOCUS exports name the Azure meter (`gpt 4.1 Inp regnl Tokens`) in SkuMeter
    # (1.0r2 and later) or x_SkuMeterName (1.0): read like a cost-details MeterName.
    "meter_name": ["SkuMeter", "x_SkuMeterName"],
    "sku_price_details": ["SkuPriceDetails"],
    "region": ["RegionId", "RegionName", "Region"],
    # 1.0-preview (Microsoft's FocusCost 1.0-preview(v1)) wrote UsageUnit / UsageQuantity.
    "unit": ["ConsumedUnit", "UsageUnit"],
    "quantity": ["ConsumedQuantity", "UsageQuantity"],
    "billed_cost": ["BilledCost"],
    "effective_cost": ["EffectiveCost"],
    "currency": ["BillingCurrency"],
    "usd_cost": [],
    "resource_id": ["ResourceId"],
    "tags": ["Tags"],
    "charge_type": [],
    "charge_category": ["ChargeCategory"],
    "charge_class": ["ChargeClass"],
    # 1.3 replaced ProviderName (deprecated, gone in 1.4) by ServiceProviderName.
    "provider_name": ["ServiceProviderName"],
    "provider_name_legacy": ["ProviderName"],
    "host_provider": ["HostProviderName"],
    "invoice_issuer": ["InvoiceIssuerName"],
    # 1.3: which contract commitments the charge consumed (kept verbatim in `lineage`; checked
    # here, burnt down by transform/commitment.py).
    "contract_applied": ["ContractApplied"],
}
ALIASES = {"azure": AZURE_ALIASES, "focus": FOCUS_ALIASES}
# Both families map to the same intermediate columns, in the same order: one union.
assert list(FOCUS_ALIASES) == list(AZURE_ALIASES)
# Required intermediates per family; a tuple is satisfied by any one of its members.
REQUIRED: dict[str, list[str | tuple[str, ...]]] = {
    "azure": ["account_id", "charge_start", "service_name", "sku_description", "unit",
              "quantity", "billed_cost", "currency", "charge_type"],
    "focus": ["billed_cost", "effective_cost", "account_id", "currency", "billing_period_start",
              "billing_period_end", "charge_category", "charge_start", "charge_end",
              "service_name", ("provider_name", "provider_name_legacy")],
}  # fmt: skip
# Columns each FOCUS version introduced (FOCUS changelog and "Introduced (version)" of each
# column), newest first; a header with none of them is 1.0.
FOCUS_VERSION_COLUMNS: list[tuple[str, tuple[str, ...]]] = [
    ("1.4", ("InvoiceDetailId", "CommitmentProgramEligibility")),
    ("1.3", ("ServiceProviderName", "HostProviderName", "AllocatedMethodId",
             "AllocatedMethodDetails", "AllocatedResourceId", "AllocatedResourceName",
             "AllocatedTags", "ContractApplied", "ContractId")),
    ("1.2", ("BillingAccountType", "SubAccountType", "InvoiceId", "PricingCurrency",
             "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
             "PricingCurrencyListUnitPrice")),
    ("1.1", ("CapacityReservationId", "CapacityReservationStatus", "CommitmentDiscountQuantity",
             "CommitmentDiscountUnit", "ServiceSubcategory", "SkuMeter", "SkuPriceDetails")),
]  # fmt: skip
# Source columns kept verbatim (as text) in `lineage` when present and not empty.
LINEAGE: dict[str, list[str]] = {
    "azure": ["BillingPeriodStartDate", "BillingPeriodEndDate", "InvoiceId", "PreviousInvoiceId",
              "ReservationId", "ReservationName", "ProductOrderId", "ProductOrderName",
              "BenefitId", "BenefitName", "Term", "Frequency", "PricingModel",
              "CostAllocationRuleName", "EffectivePrice", "UnitPrice", "PayGPrice",
              "PaygCostInBillingCurrency", "PaygCostInUsd", "CostInPricingCurrency",
              "ExchangeRatePricingToBilling"],
    "focus": ["BillingPeriodStart", "BillingPeriodEnd", "InvoiceId", "InvoiceDetailId",
              "SkuPriceId", "SkuPriceDetails", "SkuMeter", "PricingCategory", "ChargeFrequency",
              "ListCost", "ContractedCost", "CommitmentDiscountId", "CommitmentDiscountName",
              "CommitmentDiscountType", "CommitmentDiscountCategory", "CommitmentDiscountStatus",
              "CommitmentDiscountQuantity", "CommitmentDiscountUnit", "CapacityReservationId",
              "CapacityReservationStatus", "ContractApplied", "ContractId",
              "AllocatedMethodId", "AllocatedMethodDetails", "AllocatedResourceId",
              "AllocatedResourceName", "AllocatedTags", "CommitmentProgramEligibility",
              "PublisherName"],
}  # fmt: skip

# Azure ChargeType -> FOCUS (ChargeCategory, ChargeClass). Refunds are corrections.
CHARGE_TYPES = {
    "Usage": ("Usage", None),
    "UnusedReservation": ("Usage", None),
    "UnusedSavingsPlan": ("Usage", None),
    "Purchase": ("Purchase", None),
    "Refund": ("Purchase", "Correction"),
    "Tax": ("Tax", None),
    "Adjustment": ("Adjustment", None),
    "RoundingAdjustment": ("Adjustment", None),
    "Credit": ("Credit", None),
}
FOCUS_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
# MeterCategory -> FOCUS ServiceCategory (FOCUS files carry their own).
SERVICE_CATEGORIES = {
    "Virtual Machines": "Compute",
    "Azure OpenAI": "AI and Machine Learning",
    "Foundry Models": "AI and Machine Learning",
    "Cognitive Services": "AI and Machine Learning",
    "Foundry Tools": "AI and Machine Learning",
    "Azure AI Services": "AI and Machine Learning",
    "Azure OpenAI Service": "AI and Machine Learning",
    "Machine Learning": "AI and Machine Learning",
    "Storage": "Storage",
    "Bandwidth": "Networking",
    "Virtual Network": "Networking",
}
# Microsoft is provider, host and invoice issuer of everything in an Azure cost-details file
# (Marketplace charges included: Microsoft invoices them).
PROVIDERS = {"azure-ea": "Microsoft", "azure-mca": "Microsoft"}


def service_category_map() -> Column:
    """MeterCategory -> FOCUS ServiceCategory (SERVICE_CATEGORIES) as a map column."""
    return F.create_map(*[F.lit(x) for kv in SERVICE_CATEGORIES.items() for x in kv])
