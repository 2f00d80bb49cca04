"""Billing files of every dialect -> canonical FOCUS-aligned billing lines.

Dialects are recognised from each file's header by what it carries, not by one column name:
- `azure-ea` / `azure-mca`: Azure cost details. Both share one alias table (EA writes
  PascalCase, MCA camelCase, names are matched ignoring case); the money column is
  `CostInBillingCurrency`, or `Cost` / `PreTaxCost` in older dataset versions. A file is MCA
  when most of its matched names are camelCase.
- `focus-1.0` ... `focus-1.4`: FOCUS. The version is the newest whose introduced columns the
  header carries (a lower bound: a newer file may use none of its version's new columns), or
  the export manifest's `dataVersion` where the run has one (the producer's own statement).
Each is mapped onto one set of intermediate string columns, then typed and checked the same
way. Actual cost: CostInBillingCurrency -> BilledCost (and EffectiveCost, since an actual-cost
export carries no amortisation). `x_` columns of FOCUS are kept as JSON in `x_columns`;
allocation, contract, commitment and pricing columns that have no lake column are kept as JSON
in `lineage`. A header no dialect accepts is an InputError naming the file, the closest
dialect and the required columns it lacks.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger import contracts
from inference_ledger.ingest import records as R
from inference_ledger.ingest.billing_canonical import (
    rename_canonical,
    with_canonical_billing,
    with_usd,
)
from inference_ledger.ingest.billing_checks import with_billing_status, with_failed_months
from inference_ledger.ingest.billing_columns import LINEAGE
from inference_ledger.ingest.billing_dialects import Dialect, resolve_dialect

# transform/commitment.py imports the ContractApplied parser (the one the checks use) from here.
from inference_ledger.ingest.billing_parse import (
    contract_applied_elements as contract_applied_elements,
)
from inference_ledger.ingest.billing_parse import with_billing_parsed
from inference_ledger.ingest.export_run_facts import runs_frame, with_current_run
from inference_ledger.ingest.exports import ExportRun, with_row_count_check
from inference_ledger.workload import WorkloadRules, with_workload

BILLING_COLUMNS = [c.name for c in contracts.columns("lake", "billing_lines")]


def _x_columns(header: tuple[str, ...]) -> Column:
    xs = [h for h in header if h.startswith("x_")]
    if not xs:
        return F.lit(None).cast("string")
    return F.to_json(F.create_map(*[e for h in xs for e in (F.lit(h), F.col(f"`{h}`"))]))


def _lineage(header: tuple[str, ...], family: str) -> Column:
    """The family's lineage columns present in the file, as a JSON object of their non-empty
    text values (null when none has a value)."""
    by_lower = {h.lower(): h for h in header}
    cols = [by_lower[c.lower()] for c in LINEAGE[family] if c.lower() in by_lower]
    if not cols:
        return F.lit(None).cast("string")
    # A struct, not a filtered map: `to_json` leaves a struct's null fields out just the same,
    # and a lambda (map_filter) is evaluated outside the generated code of its stage.
    fields = [F.col(f"`{c}`").cast("string") for c in cols]
    kept = F.struct(
        *[F.when(F.trim(v) != "", v).alias(c) for v, c in zip(fields, cols, strict=True)]
    )
    return F.nullif(F.to_json(kept), F.lit("{}"))


def _select(
    df: DataFrame, header: tuple[str, ...], dialect: Dialect, line: Column, csv: bool
) -> DataFrame:
    return df.select(
        *[
            (F.col(f"`{src}`").cast("string") if src else F.lit(None).cast("string")).alias(name)
            for name, src in dialect.columns.items()
        ],
        _x_columns(header).alias("x_columns"),
        _lineage(header, dialect.family).alias("_lineage"),
        F.lit(dialect.name).alias("source_format"),
        R.file_path_col().alias("source_file"),
        line.alias("line_number"),
        F.lit(csv).alias("_csv"),
        F.col(R.CORRUPT)
        if R.CORRUPT in df.columns
        else F.lit(None).cast("string").alias(R.CORRUPT),
        *_raw_columns(header, csv),
    )


def _raw_columns(header: tuple[str, ...], csv: bool) -> list[Column]:
    """The row as delivered, for `raw_record` (serialised only where the row is not loaded,
    `_raw_record`). CSV rows keep their text fields as an array in header order (`_raw`) and
    the header as a literal array (`_raw_keys`, folded into the plan: not carried per row),
    so that frames of different headers union and nothing is serialised yet. Not a map built
    per row: its keys were carried with every row and each row's map checked for duplicate
    keys (1M lines, warm, alternated: 20.8-22.8 s -> 17.4-17.7 s). Parquet rows, whose fields
    have types of their own, are serialised here (`_raw_json`)."""
    if csv:
        return [
            F.array(*[F.col(f"`{h}`") for h in header]).alias("_raw"),
            F.array(*[F.lit(h) for h in header]).alias("_raw_keys"),
            F.lit(None).cast("string").alias("_raw_json"),
        ]
    return [
        F.lit(None).cast("array<string>").alias("_raw"),
        F.lit(None).cast("array<string>").alias("_raw_keys"),
        F.to_json(F.struct(*[F.col(f"`{h}`") for h in header])).alias("_raw_json"),
    ]


def _raw_record() -> Column:
    """The delivered row as JSON (what `to_json` of the row's struct gives: null fields left
    out), for rows that are not loaded."""
    pairs = F.map_from_arrays(F.col("_raw_keys"), F.col("_raw"))
    kept = F.map_filter(pairs, lambda _, v: v.isNotNull())
    as_json = F.coalesce(F.col("_raw_json"), F.to_json(kept))
    return F.when(F.col("status") != R.LOADED, as_json)


def _parquet_header(spark: SparkSession, path: Path) -> tuple[tuple[str, ...], T.StructType]:
    schema = spark.read.parquet(str(path)).schema
    return tuple(f.name for f in schema.fields), schema


def read_billing_files(spark: SparkSession, files: list[Path]) -> DataFrame | None:
    """All billing blobs as intermediate string columns + dialect, file and line number.

    CSV line numbers count the header as line 1 (valid while a file is read as one split:
    files over 128 MiB are split by Spark and get no line number); they are final when each
    file is its own partition (`one_file_per_partition` around the scan's action), and
    `numbered` finishes them otherwise. Parquet rows are numbered from 1. A file whose header
    matches no dialect is an error naming it, the closest dialect and the required columns it
    lacks.
    """
    csv_groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    frames = []
    for path in files:
        if path.name.endswith(".parquet"):
            header, schema = _parquet_header(spark, path)
            dialect = resolve_dialect(header, str(path))
            # Money columns stored as floating point are fixed at 10 places, never kept as floats.
            df = spark.read.parquet(str(path))
            for f in schema.fields:
                if isinstance(f.dataType, T.DoubleType | T.FloatType):
                    # NaN, infinity, 1e300 have no decimal(38,10) value: kept as their text, so
                    # the row is quarantined as "not a decimal number" rather than "empty".
                    c = F.col(f"`{f.name}`")
                    exact = c.try_cast(T.DecimalType(38, 10)).cast("string")
                    df = df.withColumn(f.name, F.coalesce(exact, c.cast("string")))
            frames.append(_select(df, header, dialect, F.col("_metadata.row_index") + 1, False))
            continue
        header = R.read_header(path)
        if not header:
            continue  # an empty file has no rows; it is still checksummed and counted
        resolve_dialect(header, str(path))
        csv_groups[header].append(str(path))
    for header, paths in sorted(csv_groups.items()):
        df = R.read_csv_strings(spark, paths, header).withColumn("_row_line", _csv_line())
        dialect = resolve_dialect(header, paths[0])
        frames.append(_select(df, header, dialect, F.col("_row_line"), True))
    return R.union_all(frames)


_IN_PARTITION = (1 << 33) - 1


def _csv_line() -> Column:
    """A CSV row's line number if its file starts the partition it is read in: Spark's row id
    holds the row's place in its partition in the low 33 bits, and the header is line 1. Rows
    of a later split of a file (one over 128 MiB) get none. A file read after another in the
    same partition gets numbers counted from the partition's start: `numbered` moves them to
    the file's own (its first row is then not line 2)."""
    place = F.monotonically_increasing_id().bitwiseAND(F.lit(_IN_PARTITION))
    return F.when(F.col("_metadata.file_block_start") == 0, place + 2)


# Below this mean size a pass's files are read as Spark packs them (several to a partition),
# written unpartitioned and renumbered after: in a partition each and in a folder per status
# and month, small files' rows become many small files (the demo's 104 blobs of ~75 KB over
# 21 months: its night 77 s -> 86 s), and a second pass over small files costs little. Spark's
# own estimate of what opening a file costs.
APART_MEAN_BYTES = 4 << 20


def reads_apart(files: list[Path]) -> bool:
    """Whether a pass over `files` reads each in a partition of its own (`one_file_per_partition`)
    and writes its records in the lake's layout: files of a mean size of APART_MEAN_BYTES."""
    sizes = [p.stat().st_size for p in files]
    return bool(sizes) and sum(sizes) >= APART_MEAN_BYTES * len(sizes)


@contextlib.contextmanager
def one_file_per_partition(spark: SparkSession):
    """Run a scan of `read_billing_files` with every file in a partition of its own, so that
    its CSV line numbers are final as read. Spark packs files into one partition while opening
    one costs less than `openCostInBytes`, which it reads when the scan's action plans it."""
    key = "spark.sql.files.openCostInBytes"
    before = spark.conf.get(key)
    spark.conf.set(key, str(1 << 40))
    try:
        yield
    finally:
        spark.conf.set(key, before)


def _line_number(first_id: Column) -> Column:
    """A CSV row's line number from its number as read (Spark's row id, or `_csv_line`) and
    its file's first one (line 2, after the header); a file split across partitions jumps by
    2^33 ids: no reliable line number then. Other rows keep theirs."""
    offset = F.col("line_number") - first_id
    return F.when(~F.col("_csv"), F.col("line_number")).when(offset < (1 << 33), offset + 2)


def with_line_numbers(rows: DataFrame) -> DataFrame:
    """CSV rows carry Spark's row id or `_csv_line`; a file's first is line 2 (after the
    header)."""
    first = (
        rows.filter(F.col("_csv"))
        .groupBy("source_file")
        .agg(F.min("line_number").alias("_first_id"))
    )
    return (
        rows.join(F.broadcast(first), "source_file", how="left")
        .withColumn("line_number", _line_number(F.col("_first_id")))
        .drop("_first_id", "_csv")
    )


def numbered(records: DataFrame, first_ids: dict[str, int]) -> DataFrame:
    """`with_line_numbers` with each file's first number as read known (counted once,
    elsewhere)."""
    pairs = [F.lit(x) for kv in sorted(first_ids.items()) for x in kv]
    first = F.create_map(*pairs)[F.col("source_file")] if pairs else F.lit(None).cast("long")
    return records.withColumn("line_number", _line_number(first)).drop("_csv")


def with_run_facts(
    spark: SparkSession, raw: DataFrame, runs: list[ExportRun]
) -> tuple[DataFrame, list[ExportRun]]:
    """`read_billing_files` rows joined to their run's facts, after the manifest row-count
    check (a pass over `raw`: a caller with large exports caches `raw`)."""
    runs = with_row_count_check(runs, rows_per_file(raw))
    return joined_to_runs(spark, raw, runs), runs


def joined_to_runs(spark: SparkSession, raw: DataFrame, runs: list[ExportRun]) -> DataFrame:
    """`read_billing_files` rows with their run's facts and whether it is the current run of
    its scope and month (as the runs stand: their row-count check already applied)."""
    facts = with_current_run(runs_frame(spark, runs)).drop("source")
    return raw.join(F.broadcast(facts), "source_file", how="left")


def billing_records(rows: DataFrame, fx: DataFrame, rules: WorkloadRules) -> DataFrame:
    """Raw billing rows (joined to run facts) -> accounting records with canonical columns."""
    records = checked_records(rows, fx, rules)
    return records.transform(with_line_numbers).select(*records.columns[:-1])


def checked_records(
    rows: DataFrame, fx: DataFrame, rules: WorkloadRules, failed: dict[str, str] | None = None
) -> DataFrame:
    """`billing_records` before line numbers: CSV rows keep their row id in `line_number` and
    `_csv` set (`with_line_numbers` or `numbered` finish them). Lines of the `failed` months
    (month -> why) that would load are quarantined, naming why."""
    typed = (
        rows.transform(with_billing_parsed)
        .transform(with_billing_status)
        .transform(lambda df: with_failed_months(df, failed or {}))
        .transform(with_canonical_billing)
        .transform(rename_canonical)
        .transform(lambda df: with_usd(df, F.broadcast(fx)))
        .transform(lambda df: with_workload(df, rules, tags_map="_p_tags_map"))
        .withColumn(
            "source",
            F.when(F.col("source_format").startswith("focus"), F.lit("billing.focus")).otherwise(
                F.lit("billing.azure")
            ),
        )
    )
    return typed.select(
        *[F.col(c) for c in BILLING_COLUMNS if c not in R.ACCOUNTING_COLUMNS],
        "source",
        "source_file",
        "line_number",
        "status",
        "reason",
        "field",
        _raw_record().alias("raw_record"),
        "_csv",
    )


def rows_per_file(rows: DataFrame) -> dict[str, int]:
    return {
        r["source_file"]: r["n"]
        for r in rows.groupBy("source_file").agg(F.count(F.lit(1)).alias("n")).collect()
    }
