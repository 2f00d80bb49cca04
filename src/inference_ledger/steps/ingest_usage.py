"""The usage part of an ingest: usage-API pages -> deduplicated usage facts in the lake's
`usage_facts`, month by month; on an incremental night only the months new or changed pages
touch are read and rewritten."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from inference_ledger import lake
from inference_ledger.ingest import records as R
from inference_ledger.ingest import usage
from inference_ledger.run import plan
from inference_ledger.run.context import RunContext
from inference_ledger.steps.accounting import account, skipped

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UsageRead:
    """What an incremental night reads: the files, the months it rewrites, the new files, and
    the accounting rows of the files it leaves alone."""

    files: list[Path]
    skipped: list[dict]
    months: list[str]
    new: list[str]


def usage_files_to_read(
    spark: SparkSession, ctx: RunContext, files: list[Path]
) -> UsageRead | None:
    """The files to read and months to rewrite, or None to read everything (a first or `--full`
    run); decided by run/plan.py."""
    if not ctx.known_files or not files:
        return None
    sums = {str(p): R.sha256_file(p) for p in files}
    todo = plan.usage_months_to_rewrite([str(p) for p in files], sums, ctx.known_files)
    if todo is None:
        return None
    fed = set()
    if todo.months:
        fed = {
            r[0]
            for r in lake.read_table(spark, ctx.lake_dir, "usage_facts")
            .filter(F.col("usage_month").isin(list(todo.months)))
            .select("source_file")
            .distinct()
            .collect()
        }
    wanted = set(plan.usage_files_to_read([str(p) for p in files], todo, fed))
    return UsageRead(
        files=[p for p in files if str(p) in wanted],
        skipped=skipped(usage.SOURCE, [p for p in files if str(p) not in wanted], sums),
        months=list(todo.months),
        new=list(todo.new),
    )


def ingest_usage(
    spark: SparkSession, ctx: RunContext, files: list[Path], todo: UsageRead | None
) -> list[dict]:
    """Usage pages -> lake `usage_facts`; returns the accounting of every usage file."""
    # Telling partial pulls apart decompresses, parses and hashes every page again in Python
    # (10M results: ~20 s, ~27 CPU-s); on a thread it runs while Spark reads the same files,
    # in the CPU time Spark leaves idle and between its jobs, instead of after them.
    first = todo.files if todo is not None else files
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="partial-pulls")
    pulls = pool.submit(usage.partial_pulls, first)
    try:
        read = _usage_records(spark, ctx, files, todo)
        accounting = read.skipped
        if read.records is not None:
            # Another set of files (an incremental night that fell back to all) chains anew.
            warnings = pulls.result() if read.files == first else usage.partial_pulls(read.files)
            accounting = accounting + _flag_partial_pulls(
                account(spark, ctx, "usage", read.records, read.files), warnings
            )
            # The loaded records' month folders become the lake's: dynamic partition overwrite,
            # without reading the rows back and encoding them again (10M results: ~20 s).
            lake.replace_partitions(
                spark, _loaded_path(ctx), ctx.lake_dir, "usage_facts", read.months
            )
        return accounting
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        lake.delete(spark, _records_path(ctx))


def _records_path(ctx: RunContext) -> str:
    return lake.run_path(ctx.lake_dir, ctx.run_id, _RECORDS)


def _loaded_path(ctx: RunContext) -> str:
    return f"{_records_path(ctx)}/status={R.LOADED}"


# Every usage record (loaded or not) is written once under the run, in the lake's layout with a
# folder per status, and read back: the counts and the quarantine read that Parquet instead of
# computing the dedupe window again, and the loaded rows' folders are moved into the lake.
# Cheaper than caching the records (10M results: 86 s to build the cache against 75 s to write
# the Parquet); deleted once the ingest is done.
_RECORDS = "work/usage_records"


def _written_records(spark: SparkSession, ctx: RunContext, pages: DataFrame) -> DataFrame:
    return lake.write_staged(
        usage.usage_records(pages), "usage_facts", _records_path(ctx), "status"
    )


@dataclass(frozen=True)
class _Records:
    """Usage records (written under the run), the files they were read from, the accounting of
    the files left alone, and the months to replace in the lake (None: every month read)."""

    records: DataFrame | None
    files: list[Path]
    skipped: list[dict]
    months: list[str] | None = None


def _usage_records(
    spark: SparkSession, ctx: RunContext, files: list[Path], todo: UsageRead | None
) -> _Records:
    """Incremental: only the usage months that new or changed files touch are read and rewritten
    (the lake is partitioned by month; just those partitions are replaced). To dedupe such a
    month completely it re-reads every file that fed its lake partition (`source_file`) and
    every file in its day folders; files of other months are recorded as skipped. Rows of
    re-read files that fall in other months are left out (they are in the lake already)."""
    if todo is not None:
        pages = usage.read_pages(spark, todo.files)
        if pages is None:
            return _Records(None, todo.files, todo.skipped)
        written = _written_records(spark, ctx, pages)
        month = F.col("usage_month")
        stray = written.filter(F.col("source_file").isin(todo.new) & ~month.isin(todo.months))
        if stray.limit(1).count() == 0:
            records = written.filter(month.isNull() | month.isin(todo.months))
            return _Records(records, todo.files, todo.skipped, todo.months)
        log.info("usage: new files hold buckets outside the months they touch; reading all")
    pages = usage.read_pages(spark, files)
    if pages is None:
        return _Records(None, files, [])
    return _Records(_written_records(spark, ctx, pages), files, [])


def _flag_partial_pulls(rows: list[dict], warnings: dict[str, str]) -> list[dict]:
    """Name each usage file that ends a partial pull (`warning`, kept in audit.input_files;
    `warnings`: `usage.partial_pulls` of the files read): its rows load -- they are real usage
    -- but the pull is never taken as complete. The files read are whole months of day
    folders, so every page a chain could continue with is here."""
    for row in rows:
        warning = warnings.get(row["source_file"])
        if warning:
            row["warning"] = warning
            log.warning("%s: %s", row["source_file"], warning)
    return rows
