"""The Parquet lake: canonical tables (partitioned) and each run's derived outputs."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from inference_ledger import contracts
from inference_ledger.spark import local_frame

# Canonical tables and their partition column (None = rewritten whole each run).
TABLES = {
    "billing_lines": "billing_month",
    "usage_facts": "usage_month",
    "revenue_lines": None,
    "settlements": None,
    "contract_terms": None,
    "fx_rates": None,
    "prices": None,
    "commitments": None,
    "contract_commitments": None,
}


def table_path(lake: Path | str, table: str) -> str:
    return f"{str(lake).rstrip('/')}/{table}"


def run_path(lake: Path | str, run_id: str, name: str) -> str:
    """Outputs of one run (marts before publish, ingest accounting), isolated from other runs."""
    return f"{str(lake).rstrip('/')}/_runs/{run_id}/{name}"


def _conform(df: DataFrame, table: str, keep_others: bool = False) -> DataFrame:
    """The table's columns in its order and types; `keep_others`: `df`'s other columns after."""
    cols = contracts.columns("lake", table)
    names = {c.name for c in cols}
    others = [c for c in df.columns if c not in names] if keep_others else []
    return df.select(
        *[F.col(c.name).cast(contracts.spark_type(c)).alias(c.name) for c in cols], *others
    )


def write_table(df: DataFrame, lake: Path | str, table: str) -> None:
    """Replace the partitions present in `df` (or the whole table when unpartitioned)."""
    out = _conform(df, table)
    part = TABLES[table]
    writer = out.write.mode("overwrite")
    if part:
        # Dynamic partition overwrite (session default): only the months written are replaced.
        writer = writer.partitionBy(part)
    writer.parquet(table_path(lake, table))


# Spark's folder name for a null partition value.
_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


def write_staged(df: DataFrame, table: str, path: str, by: str) -> DataFrame:
    """Write `df` at `path` (under a run) in the lake table's own layout and column types, the
    partitions nested under a `by` folder per value (`by=<value>/<partition>=<month>/`), the
    columns besides the table's kept; returns it as written. One `by` value's folders are then
    the table's new partitions (`replace_partitions`): the rows are encoded once, not read back
    and written again."""
    out = _conform(df, table, keep_others=True)
    out.write.mode("overwrite").partitionBy(by, TABLES[table]).parquet(path)
    return df.sparkSession.read.schema(out.schema).parquet(path)


def replace_partitions(
    spark: SparkSession, staged: str, lake: Path | str, table: str, values=None
) -> list[str]:
    """Move the partition folders under `staged` (`<partition column>=<value>`) into the lake
    table, each replacing the table's folder of that value (as a dynamic partition overwrite
    does; the lake's readers take the table's columns by name, so the staged files' other
    columns are not read). `values`: only these partitions, and the null one (default all).
    Returns the values moved."""
    fs, source = _filesystem(spark, staged)
    if not fs.exists(source):
        return []
    prefix = f"{TABLES[table]}="
    _, root = _filesystem(spark, table_path(lake, table))
    moved = []
    for status in fs.listStatus(source):
        name = status.getPath().getName()
        value = name[len(prefix) :]
        if not (status.isDirectory() and name.startswith(prefix)):
            continue
        if values is not None and value not in values and value != _NULL_PARTITION:
            continue
        target = spark._jvm.org.apache.hadoop.fs.Path(root, name)
        if fs.exists(target) and not fs.delete(target, True):
            raise OSError(f"could not replace {target.toString()}")
        fs.mkdirs(root)
        if not fs.rename(status.getPath(), target):
            raise OSError(f"could not move {status.getPath().toString()} to {target.toString()}")
        moved.append(value)
    return moved


def read_table(spark: SparkSession, lake: Path | str, table: str) -> DataFrame:
    """A lake table with its contract schema; empty if it was never written."""
    schema = contracts.spark_schema("lake", table)
    path = table_path(lake, table)
    if not _exists(spark, path):
        return local_frame(spark, [], schema)
    df = spark.read.schema(schema).parquet(path)
    return df.select(*[f.name for f in schema.fields])


def _filesystem(spark: SparkSession, path: str):
    """(Hadoop FileSystem, Hadoop Path) of a lake path, on any Hadoop filesystem."""
    hpath = spark._jvm.org.apache.hadoop.fs.Path(str(path))
    return hpath.getFileSystem(spark._jsc.hadoopConfiguration()), hpath


def _exists(spark: SparkSession, path: str) -> bool:
    fs, hpath = _filesystem(spark, path)
    return fs.exists(hpath)


def table_bytes(spark: SparkSession, lake: Path | str, table: str) -> int:
    """Bytes of a lake table's files (0 if it was never written), on any Hadoop filesystem."""
    fs, hpath = _filesystem(spark, table_path(lake, table))
    return int(fs.getContentSummary(hpath).getLength()) if fs.exists(hpath) else 0


def exists(spark: SparkSession, path: str) -> bool:
    """Whether a lake path exists, on any Hadoop filesystem (local, s3a://, abfss://)."""
    return _exists(spark, str(path))


def delete(spark: SparkSession, path: str) -> None:
    """Remove a lake path recursively, if it exists, on any Hadoop filesystem."""
    fs, hpath = _filesystem(spark, path)
    if fs.exists(hpath):
        fs.delete(hpath, True)


def write_run_output(df: DataFrame, lake: Path | str, run_id: str, name: str) -> None:
    df.write.mode("overwrite").parquet(run_path(lake, run_id, name))


def read_run_output(spark: SparkSession, lake: Path | str, run_id: str, name: str) -> DataFrame:
    return spark.read.parquet(run_path(lake, run_id, name))


def written_run_output(
    spark: SparkSession, df: DataFrame, lake: Path | str, run_id: str, name: str
) -> DataFrame:
    """`df` written under the run and read back: what is made from it plans and reads the
    Parquet, not `df`'s whole lineage again."""
    write_run_output(df, lake, run_id, name)
    return read_run_output(spark, lake, run_id, name)
