"""A small finance feed ingested without a Spark job of its own (`ingest/finance_local.py`):
rows read, checked and accounted for in Python, then handed to Spark as one DataFrame with the
lake table's contract schema. The lake tables and the quarantine are written together when
the feeds are done (`Writes.flush`), a few Spark jobs in all instead of a dozen per feed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from inference_ledger import contracts, lake
from inference_ledger.ingest import finance
from inference_ledger.ingest import finance_local as FL
from inference_ledger.ingest import finance_local_feeds as LF
from inference_ledger.ingest import finance_local_records as L
from inference_ledger.ingest import records as R
from inference_ledger.run.context import EVERY_PERIOD_INPUTS, RunContext
from inference_ledger.spark import local_frame

QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType()),
        T.StructField("source_file", T.StringType()),
        T.StructField("line_number", T.LongType()),
        T.StructField("field", T.StringType()),
        T.StructField("reason", T.StringType()),
        T.StructField("raw_record", T.StringType()),
        T.StructField("period_month", T.StringType()),
        T.StructField("amount", T.DecimalType(38, 10)),
        T.StructField("currency", T.StringType()),
    ]
)


def _simple(feed: str):
    return lambda rows, rates: LF.simple_records(rows, feed, *finance.DEDUPE[feed])


@dataclass(frozen=True)
class LocalFeed:
    build: Callable[[list[FL.Row], LF.Rates], list[dict]]
    # (what, currency column, date column) of the FX check, when its money converts to USD
    fx_check: tuple[str, str, str] | None = None
    # the column whose YYYY-MM is the row's month (accounting.py `_month_of`), if any
    month: str | None = None


FEEDS: dict[str, LocalFeed] = {
    "fx": LocalFeed(_simple("fx")),
    "prices": LocalFeed(_simple("prices")),
    "contracts": LocalFeed(_simple("contracts")),
    "revenue": LocalFeed(
        LF.revenue_records, ("finance/revenue", "currency", "revenue_date"), "revenue_date"
    ),
    "settlements": LocalFeed(
        LF.settlement_records,
        ("finance/settlements", "currency", "statement_date"),
        "period_start",
    ),
    "commitments": LocalFeed(
        LF.commitment_records, ("finance/commitments", "currency", "start_date")
    ),
}


@dataclass
class Writes:
    """Lake tables and quarantine rows of the feeds read in Python, written at the end."""

    tables: list[tuple[DataFrame, str]] = field(default_factory=list)
    quarantine: list[tuple] = field(default_factory=list)

    def flush(self, spark: SparkSession, ctx: RunContext) -> None:
        """Every write at once: each is a small Spark job whose time is mostly waiting (task
        scheduling, the output commit), so they overlap well, even on two cores."""
        jobs = [lambda df=df, t=t: write_table(df, ctx.lake_dir, t) for df, t in self.tables]
        if self.quarantine:
            path = lake.run_path(ctx.lake_dir, ctx.run_id, "quarantine")
            quarantine = local_frame(spark, self.quarantine, QUARANTINE_SCHEMA)
            jobs.append(lambda: quarantine.write.mode("append").parquet(path))
        self.tables, self.quarantine = [], []
        if jobs:
            with ThreadPoolExecutor(len(jobs), thread_name_prefix="finance-write") as pool:
                for done in [pool.submit(job) for job in jobs]:
                    done.result()  # the first failure is raised, after every job ended


def write_table(df: DataFrame, lake_dir, table: str) -> None:
    """`lake.write_table` of a DataFrame already of the table's contract schema (its casts
    would each be a round trip to the JVM): an unpartitioned table, replaced whole."""
    if lake.TABLES[table] is not None or df.schema != contracts.spark_schema("lake", table):
        lake.write_table(df, lake_dir, table)
        return
    df.write.mode("overwrite").parquet(lake.table_path(lake_dir, table))


def read_local(
    spark: SparkSession,
    ctx: RunContext,
    name: str,
    table: str,
    files: list[Path],
    rates: LF.Rates | None,
    writes: Writes,
) -> tuple[list[dict] | None, DataFrame | None, list[dict]]:
    """(loaded lake rows, their DataFrame, accounting) of a small feed; None, None when no file
    has a header (the lake table is left as it is). Raises FL.Unsupported before anything is
    recorded when Spark must read the feed."""
    spec = FEEDS[name]
    rows = FL.read_rows(files, finance.FEEDS[name][0])
    if rows is None:
        # As `account` of no records: no month columns to speak of.
        return None, None, accounting_rows(name, [], files, None)
    records = spec.build(rows, rates or {})
    if spec.fx_check:
        L.require_fx(records, *spec.fx_check)
    accounting = accounting_rows(name, records, files, spec.month)
    writes.quarantine += _quarantine_rows(records, spec.month)
    columns = [c.name for c in contracts.columns("lake", table)]
    loaded = [{c: r[c] for c in columns} for r in records if r["status"] == R.LOADED]
    schema = contracts.spark_schema("lake", table)
    df = local_frame(spark, [tuple(r[c] for c in columns) for r in loaded], schema)
    writes.tables.append((df, table))
    return loaded, df, accounting


def accounting_rows(
    name: str, records: list[dict], files: list[Path], month: str | None
) -> list[dict]:
    """`accounting.account`'s per-file rows, counted in Python."""
    counts: dict[str, Counter] = {}
    months: dict[str, dict[str, set]] = {}
    for r in records:
        counts.setdefault(r["source_file"], Counter())[r["status"]] += 1
        if month is not None and r[month] is not None:
            per = months.setdefault(r["source_file"], {R.LOADED: set(), R.QUARANTINED: set()})
            if r["status"] in per:
                per[r["status"]].add(_year_month(r[month]))
    source = records[0]["source"] if records else name
    out = []
    for path in files:
        n = counts.get(str(path), Counter())
        row: dict = {
            "source": source,
            "source_file": str(path),
            "rows_read": sum(n.values()),
            **{f"rows_{s}": n[s] for s in R.STATUSES},
        }
        if month is not None:
            per = months.get(str(path), {R.LOADED: set(), R.QUARANTINED: set()})
            for s in (R.LOADED, R.QUARANTINED):
                row[f"months_{s}"] = sorted(per[s])
        row["is_every_period"] = month is None and name in EVERY_PERIOD_INPUTS
        row["checksum_sha256"] = R.sha256_file(path)
        row["byte_count"] = path.stat().st_size
        out.append(row)
    return out


def _quarantine_rows(records: list[dict], month: str | None) -> list[tuple]:
    """`accounting._write_quarantine`'s rows: money at stake only for month-specific feeds."""
    out = []
    for r in records:
        if r["status"] != R.QUARANTINED:
            continue
        period = _year_month(r[month]) if month and r[month] is not None else None
        money = (r["amount"], r["currency"]) if month and "amount" in r else (None, None)
        out.append(
            (r["source"], r["source_file"], None, r["field"], r["reason"], r["raw_record"],
             period, *money)
        )  # fmt: skip
    return out


def _year_month(day) -> str:
    return f"{day.year:04d}-{day.month:02d}"  # date_format(yyyy-MM)
