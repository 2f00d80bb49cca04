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


def _conform(df: DataFrame, table: str) -> DataFrame:
    cols = contracts.columns("lake", table)
    return df.select(*[F.col(c.name).cast(contracts.spark_type(c)).alias(c.name) for c in cols])


def write_table(df: DataFrame, lake: Path | str, table: str) -> None:
    """Replace the partitions present in `df` (or the whole table when unpartitioned)."""
    out = _conform(df, table)
    part = TABLES[table]
    writer = out.write.mode("overwrite")
    if part:
        # Dynamic partition overwrite (session default): only the months written are replaced.
        writer = writer.partitionBy(part)
    writer.parquet(table_path(lake, table))


def read_table(spark: SparkSession, lake: Path | str, table: str) -> DataFrame:
    """A lake table with its contract schema; empty if it was never written."""
    schema = contracts.spark_schema("lake", table)
    path = table_path(lake, table)
    if not _exists(spark, path):
        return local_frame(spark, [], schema)
    df = spark.read.schema(schema).parquet(path)
    return df.select(*[f.name for f in schema.fields])


def _exists(spark: SparkSession, path: str) -> bool:
    jvm = spark._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark._jsc.hadoopConfiguration())
    return fs.exists(hpath)


def exists(spark: SparkSession, path: str) -> bool:
    """Whether a lake path exists, on any Hadoop filesystem (local, s3a://, abfss://)."""
    return _exists(spark, str(path))


def delete(spark: SparkSession, path: str) -> None:
    """Remove a lake path recursively, if it exists, on any Hadoop filesystem."""
    jvm = spark._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(str(path))
    fs = hpath.getFileSystem(spark._jsc.hadoopConfiguration())
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
