"""The row-accounting model every ingest shares.

An ingest turns input rows into one DataFrame of *records*: the canonical columns plus
`source`, `source_file`, `line_number`, `status`, `reason`, `field`, `raw_record`. Each input
row gets exactly one status, so per file: read = loaded + quarantined + superseded + deduplicated.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

from pyspark.sql import Column, DataFrame, SparkSession, Window, WindowSpec
from pyspark.sql import functions as F
from pyspark.sql import types as T

LOADED = "loaded"
QUARANTINED = "quarantined"
SUPERSEDED = "superseded"
DEDUPLICATED = "deduplicated"
STATUSES = (LOADED, QUARANTINED, SUPERSEDED, DEDUPLICATED)

ACCOUNTING_COLUMNS = [
    "source",
    "source_file",
    "line_number",
    "status",
    "reason",
    "field",
    "raw_record",
]
CORRUPT = "_corrupt_record"


class InputError(ValueError):
    """Bad input that stops the run: the message names file, row and field."""


_READ_FAILURE = re.compile(
    r"FAILED_READ_FILE\S*\] Encountered error while reading file (\S+?)\.?\s"
)
_CAUSE = re.compile(r"Caused by: ([\w.$]+(?:Exception|Error)[^\n]*)")


def input_error_from_spark(exc: BaseException) -> InputError | None:
    """A file Spark could not read (truncated gzip, corrupt Parquet, bad encoding) as an
    InputError naming the file and the cause; None for any other failure."""
    text = str(exc)
    m = _READ_FAILURE.search(text)
    if not m:
        return None
    path = unquote(re.sub(r"^file:(//)?", "", m.group(1)))
    causes = _CAUSE.findall(text)
    cause = causes[-1].strip() if causes else "unreadable"
    return InputError(f"{path}: cannot be read ({cause})")


def local_path(uri_col: Column) -> Column:
    """Spark reports `file:/x/y%20z`; the audit keys files by their plain path. The path is
    percent-decoded (a file named with a space would otherwise match no listed file); `+` is
    literal in a URI path, so it is kept from url_decode's form decoding."""
    plain = F.regexp_replace(uri_col, r"^file:(//)?", "")
    return F.url_decode(F.regexp_replace(plain, r"\+", "%2B"))


def file_path_col() -> Column:
    return local_path(F.col("_metadata.file_path"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def check_utf8(path: Path) -> None:
    """The whole file must be UTF-8 text: Spark's CSV reader would silently turn bad bytes into
    U+FFFD. Streams, so memory stays flat."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    at = line + chunk.count(b"\n", 0, max(exc.start, 0))
                    raise InputError(
                        f"{path}: line {at}: not UTF-8 text ({exc.reason}); the feed must be UTF-8"
                    ) from exc
                line += chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: line {line}: not UTF-8 text (cut off mid-character)") from exc
    except (EOFError, OSError):  # a truncated or corrupt gzip: Spark's read names the cause
        return


def read_header(path: Path) -> tuple[str, ...]:
    """The file's header row, after checking the whole file is readable UTF-8 text."""
    import csv

    check_utf8(path)
    try:
        with _open_text(path) as fh:
            return tuple(h.strip() for h in next(csv.reader(fh)))
    except StopIteration:
        return ()
    except (EOFError, OSError) as exc:  # a small gzip cut short fails on its first block
        raise InputError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from exc


def read_csv_strings(spark: SparkSession, paths: list[str], header: tuple[str, ...]) -> DataFrame:
    """CSV files sharing `header`, every column a string, malformed rows kept in
    `_corrupt_record` (the one way the ledger reads delivered CSV)."""
    schema = T.StructType(
        [T.StructField(h, T.StringType(), True) for h in header]
        + [T.StructField(CORRUPT, T.StringType(), True)]
    )
    return (
        spark.read.schema(schema)
        .option("header", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("multiLine", False)
        .option("quote", '"')
        .option("escape", '"')
        .csv(paths)
    )


def read_csv_by_header(
    spark: SparkSession,
    files: Iterable[Path],
    wanted: list[str],
    required: list[str],
) -> DataFrame | None:
    """Read CSV files (plain or .gz) as all-string columns named by each file's own header.

    Files are grouped by header so column order may differ between files. A file missing a
    required column is an InputError naming the file and column. Extra columns are ignored.
    Returns `wanted` columns (absent optional ones as null) + source_file + `_corrupt_record`.
    """
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for path in files:
        header = read_header(path)
        if not header:
            continue  # an empty file has no rows to account for; it is still checksummed
        missing = [c for c in required if c not in header]
        if missing:
            raise InputError(f"{path}: missing required column(s) {', '.join(missing)}")
        groups[header].append(str(path))
    frames = []
    for header, paths in sorted(groups.items()):
        df = read_csv_strings(spark, paths, header)
        frames.append(
            df.select(
                *[
                    (F.col(f"`{c}`") if c in header else F.lit(None).cast("string")).alias(c)
                    for c in wanted
                ],
                file_path_col().alias("source_file"),
                F.col(CORRUPT),
            )
        )
    return union_all(frames)


def union_all(frames: list[DataFrame]) -> DataFrame | None:
    """Union by column name; None when there is nothing to read."""
    if not frames:
        return None
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out


def raw_record(columns: list[str]) -> Column:
    return F.to_json(F.struct(*[F.col(f"`{c}`") for c in columns]))


def with_first_failure(df: DataFrame, checks: list[tuple[Column, str, str]]) -> DataFrame:
    """`_reason` and `_field` of the first failing check (null when none fails; a field of "" is
    none); checks are (is_bad, field, reason). The index of the first failure is computed
    first, in one CASE where each check appears once: a CASE per output column would carry
    every check twice, and Spark evaluates both."""
    reasons, fields = first_failure_by_index(checks, F.col("_check"))
    return (
        df.withColumn("_check", first_failed_index(checks))
        .withColumns({"_reason": reasons, "_field": fields})
        .drop("_check")
    )


def first_failed_index(checks: list[tuple[Column, str, str]]) -> Column:
    """1-based index of the first failing check (null when none fails)."""
    index: Column = F.lit(None).cast("int")
    for i, (is_bad, _, _) in reversed(list(enumerate(checks, start=1))):
        index = F.when(is_bad, F.lit(i)).otherwise(index)
    return index


def first_failure_by_index(
    checks: list[tuple[Column, str, str]], index: Column
) -> tuple[Column, Column]:
    """(reason, field) of the check at `index` (a field of "" is none)."""
    reasons = F.array(*[F.lit(why) for _, _, why in checks])
    fields = F.array(*[F.lit(fld or None).cast("string") for _, fld, _ in checks])
    return F.try_element_at(reasons, index), F.try_element_at(fields, index)


def parse_decimal(c: str, precision: int = 38, scale: int = 10) -> Column:
    """Plain decimal text only ('.' separator, optional sign): no NaN, no exponent, no commas."""
    txt = F.trim(F.col(f"`{c}`"))
    ok = txt.rlike(r"^[+-]?[0-9]+(\.[0-9]+)?$")
    return F.when(ok, txt.try_cast(T.DecimalType(precision, scale)))


def parse_iso_date(c: str) -> Column:
    txt = F.trim(F.col(f"`{c}`"))
    return F.when(txt.rlike(r"^\d{4}-\d{2}-\d{2}$"), F.try_to_date(txt, "yyyy-MM-dd"))


def parse_int(c: str) -> Column:
    txt = F.trim(F.col(f"`{c}`"))
    return F.when(txt.rlike(r"^[+-]?[0-9]+$"), txt.try_cast(T.LongType()))


def is_blank(c: str) -> Column:
    return F.col(f"`{c}`").isNull() | (F.trim(F.col(f"`{c}`")) == "")


def bad_when_present(c: str, parsed: Column) -> Column:
    """True when a non-blank value failed to parse."""
    return ~is_blank(c) & parsed.isNull()


def key_hash(key: list) -> Column:
    """A 64-bit hash of `key`: rows with the same key (nulls equal) always share it."""
    return F.xxhash64(*key)


def key_window(key: list, *more: Column) -> WindowSpec:
    """A window over the rows that share `key` (and `more`), nulls equal. It is partitioned by
    a 64-bit hash of the key first, then the key itself: the groups are the key's (a hash
    collision only puts two keys in one sort run), but the sort compares a long before ten
    strings and timestamps (10M usage results deduplicated 51 -> 44 s)."""
    return Window.partitionBy(key_hash(key), *key, *more)


def first_wins_status(
    valid: Column,
    key: list[str],
    order: list[Column],
    same: list[str],
    *,
    duplicate_why: str,
    superseded_why: str,
    conflict_on: list[str] | None = None,
    conflict_why: str | None = None,
) -> tuple[Column, Column]:
    """(status, reason) of each row when the first of each `key` group by `order` wins.

    Invalid rows are quarantined with their `_reason`. Among the valid rows of a group the
    first is loaded; another one is deduplicated when its `same` columns equal the winner's,
    else superseded by it -- unless its `conflict_on` columns also equal the winner's: then
    neither can be said to be newer, and it is quarantined with `conflict_why` for a person.

    Add both columns in one projection (`df.withColumns`): each carries the window, and in two
    projections Spark computes it, sort and shuffle included, twice.
    """
    w = key_window(key, valid).orderBy(*order)
    first = F.row_number().over(w) == 1
    duplicate = F.struct(*same) == F.first(F.struct(*same)).over(w)
    conflict = (
        F.struct(*conflict_on) == F.first(F.struct(*conflict_on)).over(w)
        if conflict_on
        else F.lit(False)
    )
    status = (
        F.when(~valid, F.lit(QUARANTINED))
        .when(first, F.lit(LOADED))
        .when(duplicate, F.lit(DEDUPLICATED))
        .when(conflict, F.lit(QUARANTINED))
        .otherwise(F.lit(SUPERSEDED))
    )
    reason = (
        F.when(~valid, F.col("_reason"))
        .when(first, F.lit(None).cast("string"))
        .when(duplicate, F.lit(duplicate_why))
        .when(conflict, F.lit(conflict_why))
        .otherwise(F.lit(superseded_why))
    )
    return status, reason


def finish_records(
    df: DataFrame,
    source: str,
    canonical: list[str],
    raw_columns: list[str],
    status: Column,
    reason: Column,
    field: Column,
    line_number: Column | None = None,
) -> DataFrame:
    """Project to canonical + accounting columns."""
    return df.select(
        *[F.col(f"`{c}`") for c in canonical if c not in ACCOUNTING_COLUMNS],
        F.lit(source).alias("source"),
        F.col("source_file"),
        (line_number if line_number is not None else F.lit(None).cast("long")).alias("line_number"),
        status.alias("status"),
        reason.alias("reason"),
        field.alias("field"),
        # Only rows that are not loaded keep their input as delivered (the quarantine shows it);
        # serialising every loaded row as well costs CPU and cache memory at millions of rows.
        F.when(status != F.lit(LOADED), raw_record(raw_columns)).alias("raw_record"),
    )


def file_counts(records: DataFrame, month: Column | None = None) -> DataFrame:
    """Per (source, file): rows read and the four outcomes; given each row's YYYY-MM `month`,
    also the months of the file's loaded and of its quarantined rows (in the same pass)."""
    months = []
    if month is not None:
        months = [
            F.array_sort(F.collect_set(F.when(F.col("status") == s, month))).alias(f"months_{s}")
            for s in (LOADED, QUARANTINED)
        ]
    return records.groupBy("source", "source_file").agg(
        F.count(F.lit(1)).alias("rows_read"),
        *[F.sum(F.when(F.col("status") == s, 1).otherwise(0)).alias(f"rows_{s}") for s in STATUSES],
        *months,
    )
