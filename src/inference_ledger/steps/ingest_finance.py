"""The finance feeds of an ingest (FX rates, prices, contract terms, revenue, settlements,
commitments): each feed's files -> checked records -> its lake table, FX first because every
other money column converts with it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from inference_ledger import lake
from inference_ledger.ingest import finance
from inference_ledger.ingest import records as R
from inference_ledger.ingest.finance_local import Unsupported, is_small
from inference_ledger.ingest.finance_local_feeds import rates_of
from inference_ledger.ingest.finance_local_records import contract_overlaps as local_overlaps
from inference_ledger.run.context import RunContext
from inference_ledger.steps import finance_local as local
from inference_ledger.steps.accounting import account, empty_records, skipped
from inference_ledger.steps.accounting import loaded as loaded_rows

log = logging.getLogger(__name__)


def checked_fx(records: DataFrame, what: str, currency_col: str, date_col: str) -> DataFrame:
    from inference_ledger.fx import require_fx

    require_fx(records.filter(F.col("status") == R.LOADED), what, currency_col, date_col)
    return records


def _simple(name: str, table: str):
    return lambda rows, fx: finance.simple_records(rows, name, table, *finance.DEDUPE[name])


def _converted(build, what: str, currency_col: str, date_col: str):
    return lambda rows, fx: checked_fx(build(rows, fx), what, currency_col, date_col)


# feed -> (lake table, records builder(rows, fx)), in the order they are read.
FEEDS: dict[str, tuple[str, Callable[[DataFrame, DataFrame | None], DataFrame]]] = {
    "fx": ("fx_rates", _simple("fx", "fx_rates")),
    "prices": ("prices", _simple("prices", "prices")),
    "contracts": ("contract_terms", _simple("contracts", "contract_terms")),
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
    accounted for). Returns the FX rates every later conversion uses, and the accounting.

    A feed of at most `finance_local.SMALL_FEED_BYTES` is read and checked in Python (a few
    thousand rows take milliseconds there, a dozen Spark jobs elsewhere); its lake table and
    quarantine rows are written with the others' when the feeds are done."""
    accounting: list[dict] = []
    state = _Fx()
    writes = local.Writes()
    try:
        for name, (table, build) in FEEDS.items():
            if name not in feeds:
                continue
            got = _feed(spark, ctx, name, table, build, state, unchanged, writes)
            accounting.extend(got.accounting)
            if name == "contracts":
                _check_overlaps(got)
            if name == "fx" or state.df is None:
                # FX is the first feed: no file of it (or not this run's source) means the lake's.
                if name == "fx" and got.df is not None:
                    state = _Fx(got.df, got.rates)
                else:
                    state = _Fx(lake.read_table(spark, ctx.lake_dir, "fx_rates"))
    finally:
        writes.flush(spark, ctx)
    return state.df if state.df is not None else lake.read_table(
        spark, ctx.lake_dir, "fx_rates"
    ), accounting


@dataclass
class _Fx:
    """The FX rates later feeds convert with: the table, and as a dict once Python needs it."""

    df: DataFrame | None = None
    rates: dict | None = None

    def as_dict(self) -> dict:
        if self.rates is None and self.df is not None:
            self.rates = rates_of(self.df.collect())
        return self.rates or {}


@dataclass
class _Got:
    df: DataFrame | None  # the lake table's rows (None: no file to read)
    accounting: list[dict]
    rates: dict | None = None  # FX read in Python: its rates
    loaded: list[dict] | None = None  # the loaded rows, when read in Python


def _check_overlaps(got: _Got) -> None:
    if got.loaded is not None:
        overlaps = local_overlaps(got.loaded)
    elif got.df is not None:
        overlaps = finance.contract_overlaps(got.df)
    else:
        return
    if overlaps:
        raise R.InputError("finance/contracts: " + "; ".join(overlaps))


def _feed(
    spark: SparkSession,
    ctx: RunContext,
    name: str,
    table: str,
    build,
    fx: _Fx,
    unchanged: bool,
    writes: local.Writes,
) -> _Got:
    files: list[Path] = finance.feed_files(ctx.landing, name)
    if unchanged and lake.exists(spark, lake.table_path(ctx.lake_dir, table)):
        return _Got(
            lake.read_table(spark, ctx.lake_dir, table),
            skipped(f"finance.{name}", files, ctx.known_files),
        )
    if is_small(files):
        try:
            rates = fx.as_dict() if local.FEEDS[name].fx_check else None
            loaded, df, accounting = local.read_local(spark, ctx, name, table, files, rates, writes)
        except Unsupported as why:
            log.info("finance.%s read by Spark: %s", name, why)
        else:
            own = rates_of(loaded) if name == "fx" and loaded is not None else None
            return _Got(df, accounting, own, loaded)
    rows = finance.read_feed(spark, ctx.landing, name)
    if rows is None:
        return _Got(None, account(spark, ctx, name, empty_records(spark), files))
    records = build(rows, fx.df).persist()
    accounting = account(spark, ctx, name, records, files)
    lake.write_table(loaded_rows(records), ctx.lake_dir, table)
    records.unpersist()
    return _Got(lake.read_table(spark, ctx.lake_dir, table), accounting)
