"""Checked billing lines -> the lake's FOCUS-aligned columns and their USD amounts."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger.ingest.billing_columns import PROVIDERS, service_category_map
from inference_ledger.ingest.billing_tokens import token_columns


def _accounting_day() -> Column:
    """The day a line is accounted on (the marts group by it): the charge's first day when it
    lies inside the export's billing period, else the billing period's first day. FOCUS bills
    BilledCost in the billing period it was invoiced, whatever the charge period: an upfront
    1-year purchase invoiced in February counts on its February start day, a correction of
    December invoiced in January on January 1st. (Azure lines always lie inside.)"""
    day = F.to_date("_p_start")
    inside = (day >= F.col("period_start")) & (day < F.col("period_end"))
    return F.when(inside, day).otherwise(F.col("period_start"))


def _text(c: str) -> Column:
    return F.nullif(F.trim(c), F.lit(""))


def with_canonical_billing(rows: DataFrame) -> DataFrame:
    """FOCUS-aligned columns (meaningful where status is loaded)."""
    category = service_category_map()
    microsoft = F.create_map(*[F.lit(x) for kv in PROVIDERS.items() for x in kv])
    of_azure = microsoft[F.col("source_format")]
    return rows.select(
        "*",
        F.coalesce(_text("provider_name"), _text("provider_name_legacy"), of_azure).alias(
            "provider_name_c"
        ),
        F.coalesce(_text("host_provider"), of_azure).alias("host_provider_c"),
        F.coalesce(_text("invoice_issuer"), of_azure).alias("invoice_issuer_c"),
        F.trim("account_id").alias("billing_account_id"),
        _text("sub_account_id").alias("sub_account_id_c"),
        F.col("_p_start").alias("charge_period_start"),
        F.col("_p_end").alias("charge_period_end"),
        _accounting_day().alias("usage_date"),
        F.col("_p_category").alias("charge_category_c"),
        F.col("_p_class").alias("charge_class_c"),
        F.trim("service_name").alias("service_name_c"),
        F.coalesce(
            _text("service_category"), category[F.trim("service_name")], F.lit("Other")
        ).alias("service_category_c"),
        F.coalesce(
            _text("service_subcategory"),
            F.when(F.size("_p_meter") == 3, F.lit("Generative AI")),
        ).alias("service_subcategory_c"),
        _text("region").alias("region_name"),
        _text("sku_id").alias("sku_id_c"),
        _text("sku_description").alias("sku_description_c"),
        *token_columns(),
        _text("resource_id").alias("resource_id_c"),
        _text("resource_group").alias("resource_group_c"),
        F.col("_p_tags").alias("tags_c"),
        F.col("_p_qty").alias("consumed_quantity"),
        _text("unit").alias("consumed_unit"),
        F.col("_p_cost").alias("billed_cost_c"),
        F.col("_p_effective").alias("effective_cost_c"),
        F.trim("currency").alias("billing_currency"),
        F.col("run_id").alias("source_run_id"),
        F.col("_lineage").alias("lineage"),
        # The run facts carry dataset_status (discovery decides it); provisional without them.
        *(
            []
            if "dataset_status" in rows.columns
            else [F.lit("provisional").alias("dataset_status")]
        ),
    )


def rename_canonical(df: DataFrame) -> DataFrame:
    # Spark resolves names ignoring case: canonical names that collide with the intermediate
    # ones are built with a `_c` suffix, and the intermediate columns dropped first.
    clash = [
        "provider_name", "host_provider", "invoice_issuer", "sub_account_id", "service_name",
        "service_category", "service_subcategory", "sku_id", "sku_description", "resource_id",
        "resource_group", "tags", "billed_cost", "effective_cost", "charge_category",
        "charge_class",
    ]  # fmt: skip
    return df.drop(*clash).withColumnsRenamed({f"{name}_c": name for name in clash})


def with_usd(df: DataFrame, fx: DataFrame) -> DataFrame:
    """USD by the FX feed, or by the export's own USD column where it has one (recorded)."""
    from inference_ledger.fx import to_usd, with_fx_rate

    df = with_fx_rate(df, fx, "billing_currency", "usage_date")
    own = F.col("_p_usd").isNotNull() & (F.col("billing_currency") != "USD")
    own_rate = _rate_from(F.col("_p_usd"), F.col("billed_cost"))
    # The USD amounts read the fx_rate these columns settle (a second projection).
    settled = df.withColumns(
        {
            "fx_source": F.when(F.col("billing_currency") == "USD", F.lit("none"))
            .when(own, F.lit("export"))
            .otherwise(F.lit("fx_feed")),
            "fx_rate": F.when(own, F.coalesce(own_rate, F.col("fx_rate"))).otherwise(
                F.col("fx_rate")
            ),
        }
    )
    own_usd = F.col("_p_usd").cast(T.DecimalType(38, 10))
    return settled.withColumns(
        {
            "billed_cost_usd": F.when(own, own_usd).otherwise(to_usd("billed_cost")),
            "effective_cost_usd": F.when(own, own_usd).otherwise(to_usd("effective_cost")),
        }
    )


def _rate_from(num: Column, den: Column) -> Column:
    from inference_ledger.transform.contract import ratio

    return ratio(num, den).cast(T.DecimalType(18, 10))
