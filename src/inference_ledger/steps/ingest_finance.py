"""The finance feeds of an ingest (FX rates, prices, contract terms, revenue, settlements,
commitments): each feed's files -> checked records -> its lake table, FX first because every
other money column converts with it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from inference_ledger import lake
from inference_ledger.ingest import finance
from inference_ledger.ingest import records as R
from inference_ledger.run.context import RunContext
from inference_ledger.steps.accounting import account, empty_records, loaded, skipped


def checked_fx(records: DataFrame, what: str, currency_col: str, date_col: str) -> DataFrame:
    from inference_ledger.fx import require_fx

    require_fx(records.filter(F.col("status") == R.LOADED), what, currency_col, date_col)
    return records


def _simple(name: str, table: str, key: list[str], values: list[str]):
    return lambda rows, fx: finance.simple_records(rows, name, table, key, values)


def _converted(build, what: str, currency_col: str, date_col: str):
    return lambda rows, fx: checked_fx(build(rows, fx), what, currency_col, date_col)


# feed -> (lake table, records builder(rows, fx)), in the order they are read.
FEEDS: dict[str, tuple[str, Callable[[DataFrame, DataFrame | None], DataFrame]]] = {
    "fx": ("fx_rates", _simple("fx", "fx_rates", ["currency", "rate_date"], ["usd_per_unit"])),
    "prices": (
        "prices",
        _simple(
            "prices",
            "prices",
            ["channel", "model", "token_type", "effective_from"],
            ["unit_price", "unit_tokens", "currency", "effective_to"],
        ),
    ),
    "contracts": (
        "contract_terms",
        _simple(
            "contracts",
            "contract_terms",
            ["agreement_id", "direction", "effective_from"],
            [
                "basis",
                "rate",
                "effective_to",
                "cap_amount",
                "tolerance_abs",
                "tolerance_pct",
                "payment_terms_days",
            ],
        ),
    ),
    "revenue": (
        "revenue_lines",
        _converted(finance.revenue_records, "finance/revenue", "currency", "revenue_date"),
    ),
    "settlements": (
        "settlements",
        _converted(finance.settlement_records, "finance/settlements", "currency", "statement_date"),
    ),
    "commitments": (
        "commitments",
        _converted(finance.commitment_records, "finance/commitments", "currency", "start_date"),
    ),
}


def ingest_finance(
    spark: SparkSession, ctx: RunContext, feeds: frozenset[str], unchanged: bool
) -> tuple[DataFrame, list[dict]]:
    """Read the chosen feeds (`unchanged`: the lake's tables are current, the files are only
    accounted for). Returns the FX rates every later conversion uses, and the accounting."""
    accounting: list[dict] = []
    fx = None
    for name, (table, build) in FEEDS.items():
        if name not in feeds:
            continue
        df, rows = _feed(spark, ctx, name, table, build, fx, unchanged)
        accounting.extend(rows)
        if name == "contracts" and df is not None:
            overlaps = finance.contract_overlaps(df)
            if overlaps:
                raise R.InputError("finance/contracts: " + "; ".join(overlaps))
        if name == "fx" or fx is None:
            # FX is the first feed: no file of it (or not this run's source) means the lake's.
            fx = (
                df
                if name == "fx" and df is not None
                else lake.read_table(spark, ctx.lake_dir, "fx_rates")
            )
    if fx is None:
        fx = lake.read_table(spark, ctx.lake_dir, "fx_rates")
    return fx, accounting


def _feed(
    spark: SparkSession,
    ctx: RunContext,
    name: str,
    table: str,
    build,
    fx: DataFrame | None,
    unchanged: bool,
) -> tuple[DataFrame | None, list[dict]]:
    files: list[Path] = finance.feed_files(ctx.landing, name)
    if unchanged and lake.exists(spark, lake.table_path(ctx.lake_dir, table)):
        return lake.read_table(spark, ctx.lake_dir, table), skipped(
            f"finance.{name}", files, ctx.known_files
        )
    rows = finance.read_feed(spark, ctx.landing, name)
    if rows is None:
        return None, account(spark, ctx, name, empty_records(spark), files)
    records = build(rows, fx).persist()
    accounting = account(spark, ctx, name, records, files)
    lake.write_table(loaded(records), ctx.lake_dir, table)
    records.unpersist()
    return lake.read_table(spark, ctx.lake_dir, table), accounting
