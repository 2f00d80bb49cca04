"""The Spark JVM's class-data archive (AppCDS): the classes a driver loads, parsed and verified
once and then mapped by every JVM that starts with the same Java and classpath.

A Spark JVM loads ~16,000 classes before a small run's first result; with the archive a small
cold run (`ledger run` of a generated quarter, 2 cores) took 4-7 s less (bench/README.md,
"Latest figures"). `make setup` builds it (`python -m inference_ledger.spark_archive`) beside the
interpreter's packages; `inference_ledger.spark.java_options` adds it to the driver's and
executors' options when the file is there. The JVM itself checks that the archive fits its
own build and classpath and starts without it otherwise (a Java or pyspark upgrade, a
standalone executor with another classpath), so a stale file costs the saving, never a run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

# The JVM reports on stdout each class it leaves out of the archive (Janino's jar is signed)
# and an archive it cannot map: neither is the run's business.
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"


def default_path() -> Path:
    """Beside the packages of this interpreter (the project's virtualenv, the image's Python):
    one archive per pyspark version, whose jars make the classpath."""
    return Path(sys.prefix) / "share" / "inference-ledger" / f"spark-{version('pyspark')}.jsa"


def java_options(path: Path | None) -> str:
    """The JVM options that map the archive at `path`, or none when there is no archive."""
    if path is None or not path.is_file():
        return ""
    return f"-XX:SharedArchiveFile={path} {QUIET}"


def build(path: Path, timeout: float = 900) -> Path:
    """Build the archive at `path`: a Spark session in a process of its own runs the kinds of
    work a ledger run does, and its JVM writes the classes it loaded when it exits. Written
    under a temporary name and moved into place, so a JVM never maps half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    env = {
        **os.environ,
        "LEDGER_SPARK_CLASS_ARCHIVE": "off",
        "LEDGER_SPARK_MASTER": "local[2]",
        "LEDGER_SPARK_JAVA_OPTIONS": f"-XX:ArchiveClassesAtExit={tmp} {QUIET}",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "inference_ledger.spark_archive", "--train"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode or not tmp.is_file() or tmp.stat().st_size == 0:
            raise RuntimeError(
                f"building the class-data archive {path} failed (exit {done.returncode}):\n"
                + (done.stderr or done.stdout)[-4000:]
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _train() -> None:
    """The kinds of work a run does, on a few rows: CSV, JSON and Parquet in and out, parsing,
    windows, joins, aggregates, Arrow both ways. Then the JVM exits, which writes the archive."""
    from inference_ledger.spark import get_spark

    spark = get_spark("class-archive")
    with tempfile.TemporaryDirectory() as folder:
        _workload(spark, Path(folder))
    gateway = spark.sparkContext._gateway
    spark.stop()
    # The JVM exits when its standard input closes (pyspark's gateway server); it writes the
    # archive on the way out, so wait for it rather than leave it to finish alone.
    proc = gateway.proc
    proc.stdin.close()
    proc.wait(timeout=600)


def _workload(spark, folder: Path) -> None:
    import gzip

    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from inference_ledger.spark import local_frame

    rows = ["day,cost,tags,model"] + [
        f'2025-01-{d:02d},{d}.125,"{{""w"":""m{d % 3}""}}",gpt-{d % 2}' for d in range(1, 29)
    ]
    (folder / "in.csv.gz").write_bytes(gzip.compress("\n".join(rows).encode()))
    (folder / "in.json").write_text(
        "\n".join(f'{{"requests": {d}, "m": "gpt-{d % 2}"}}' for d in range(9))
    )
    raw = spark.read.option("header", True).schema(
        "day string, cost string, tags string, model string"
    )
    df = (
        raw.csv(str(folder / "in.csv.gz"))
        .withColumn("day", F.try_to_timestamp("day", F.lit("yyyy-MM-dd")).cast("date"))
        .withColumn("cost", F.col("cost").try_cast("decimal(38,10)"))
        .withColumn("tag", F.from_json("tags", "map<string,string>")["w"])
        .withColumn("key", F.xxhash64("model", "day"))
        .withColumn("n", F.count(F.lit(1)).over(Window.partitionBy("model").orderBy("day")))
        .withColumn("line", F.monotonically_increasing_id())
        .withColumn(
            "s", F.concat_ws(";", F.when(F.col("cost") > 1, F.lit("x")), F.sha2("tags", 256))
        )
    )
    usage = spark.read.schema("requests long, m string").json(str(folder / "in.json"))
    small = local_frame(spark, [("gpt-0", 1), ("gpt-1", 2)], "model string, rank int")
    joined = (
        df.join(F.broadcast(small), "model", how="left")
        .join(usage.hint("merge"), F.col("model") == F.col("m"), how="left")
        .groupBy("model", F.date_format("day", "yyyy-MM").alias("month"))
        .agg(F.sum("cost").alias("cost"), F.collect_list("tag").alias("tags"), F.max("n"))
        .withColumn("top", F.aggregate("tags", F.lit(0), lambda acc, t: acc + F.length(t)))
    )
    joined.write.mode("overwrite").partitionBy("month").parquet(str(folder / "out"))
    back = spark.read.parquet(str(folder / "out"))
    table = back.unionByName(back).filter(F.col("cost").isNotNull()).toArrow()
    spark.createDataFrame(table).count()
    df.select(F.to_json(F.struct("model", "cost"))).write.mode("overwrite").csv(str(folder / "csv"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", type=Path, help="where to write it (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="build again if it exists")
    parser.add_argument("--train", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train:
        _train()
        return 0
    path = args.path or default_path()
    if path.is_file() and not args.force:
        print(f"class-data archive: {path} (exists)")
        return 0
    print(f"class-data archive: {build(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
