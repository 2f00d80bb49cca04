"""The one Spark session of a process."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from inference_ledger.resources import LOG4J_CONFIG
from inference_ledger.settings import load_settings

_SESSION = None
# Held while the session is created: a driver may start creating it on another thread
# (`start_in_background`) and its own `get_spark` then waits for that one.
_CREATING = threading.Lock()
# pyspark lets Ctrl-C cancel the running jobs only when the main thread creates the context.
_INTERRUPTS_UNHANDLED = False
log = logging.getLogger(__name__)

# HotSpot leaves a method of more than 8,000 bytes of bytecode to the interpreter for good
# (DontCompileHugeMethods). Whole-stage codegen of the billing checks' projection is such a
# method, so 1M billing lines ran it interpreted: with JIT allowed, 29-31 s -> 25-26 s warm
# (bench/billing_ingest.py, 1M lines, 2 cores, two runs a side), a cold small run no slower.
EXECUTOR_JAVA_OPTIONS = "-XX:-DontCompileHugeMethods"
DRIVER_JAVA_OPTIONS = f"-Dlog4j.configurationFile={LOG4J_CONFIG} {EXECUTOR_JAVA_OPTIONS}"


def java_options(settings) -> tuple[str, str]:
    """The driver's and the executors' JVM options: the project's, the class-data archive's
    when there is one (spark_archive.py), then LEDGER_SPARK_JAVA_OPTIONS (later options win in
    HotSpot)."""
    from inference_ledger.spark_archive import java_options as archive_options

    tail = [archive_options(settings.spark_class_archive), settings.spark_java_options]
    return tuple(
        " ".join(o for o in (base, *tail) if o)
        for base in (DRIVER_JAVA_OPTIONS, EXECUTOR_JAVA_OPTIONS)
    )


def get_spark(app_name: str = "inference-ledger", settings=None):
    """Create (once) and return the process's SparkSession at LEDGER_SPARK_MASTER (`settings`,
    default the environment's, are read only if this call creates it)."""
    global _SESSION, _INTERRUPTS_UNHANDLED
    if _SESSION is None:
        with _CREATING:
            if _SESSION is None:
                _SESSION = _create(app_name, settings or load_settings())
                _INTERRUPTS_UNHANDLED = threading.current_thread() is not threading.main_thread()
    if _INTERRUPTS_UNHANDLED and threading.current_thread() is threading.main_thread():
        _cancel_jobs_on_interrupt(_SESSION)
        _INTERRUPTS_UNHANDLED = False
    return _SESSION


def start_in_background(app_name: str = "inference-ledger", settings=None) -> None:
    """Start creating the session on a daemon thread, so that the JVM starts (~5 s) while the
    driver does other work (the run's database, imports). `get_spark` then returns it, or
    waits for it; if starting it failed, `get_spark` tries again and raises the error itself.
    Nothing to gain under spark-submit, whose JVM is already running."""
    if _SESSION is not None or _under_spark_submit():
        return
    import pyspark.sql  # noqa: F401 - imported here, not by two threads at once

    threading.Thread(
        target=_start_quietly, args=(app_name, settings), name="spark-start", daemon=True
    ).start()


def _start_quietly(app_name: str, settings) -> None:
    try:
        get_spark(app_name, settings)
    except Exception:  # noqa: BLE001 - the driver's own get_spark raises it where it is handled
        log.debug("starting Spark in the background failed", exc_info=True)


def _cancel_jobs_on_interrupt(session) -> None:
    """What pyspark does when the main thread creates the context (a thread cannot): Ctrl-C
    cancels the running jobs, then interrupts the driver."""

    def on_interrupt(signum, frame):
        session.sparkContext.cancelAllJobs()
        raise KeyboardInterrupt()

    signal.signal(signal.SIGINT, on_interrupt)


def _create(app_name: str, settings):
    from pyspark.sql import SparkSession

    # Workers must run the same interpreter as the driver (the project's virtualenv).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # Under spark-submit, its --name and (unless LEDGER_SPARK_MASTER is set, which wins as
    # before) its --master / spark-defaults.conf are left alone.
    submitted = _under_spark_submit()
    builder = SparkSession.builder if submitted else SparkSession.builder.appName(app_name)
    driver_options, executor_options = java_options(settings)
    if settings.configured_spark_master or not submitted:
        builder = builder.master(settings.spark_master)
    builder = (
        builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.sql.ansi.enabled", "true")
        # Adaptive execution plans each shuffle stage as a job of its own and re-optimises the
        # rest of the plan after it: a small run's ~60 queries made 196 jobs (107 without), the
        # reconciliation's alone ~40, for nothing to adapt at two cores and four partitions. A
        # small run warm, alternated in one process: 19.7 / 17.2 / 17.1 s with it, 19.2 / 16.1 /
        # 15.2 s without (its aggregate 10.8 / 9.5 / 8.8 -> 10.8 / 8.3 / 7.9 s). The 10M night:
        # bench/README.md.
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.parquet.compression.codec", "snappy")
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.legacy.timeParserPolicy", "CORRECTED")
        # Spark 4.1 lets a union report its children's partitioning so that an aggregate above
        # it skips its shuffle (SPARK-52921). With a broadcast join under one side and a sort
        # merge join under the other, the prior-period adjustment then summed the closed and
        # the recomputed side of a period as two groups (test_transform_reconcile); the
        # feature's follow-up fixes (SPARK-58819, SPARK-59141) are not in 4.1.4.
        .config("spark.sql.unionOutputPartitioning", "false")
        # On, every pyspark function call records its Python call site in the JVM (~5 Py4J
        # round trips and a stack walk each): 26,215 round trips for one small billing ingest,
        # 9,735 without, 6.0 s -> 4.8 s warm. It only adds a call site to a runtime error's
        # message; the pipeline's own errors name the file, row and field.
        .config("spark.python.sql.dataFrameDebugging.enabled", "false")
        # Spark keeps 100 generated classes; one night compiles ~850 (the demo) and a process
        # running many plans compiled the same ones again and again (unit margin: 223 classes
        # on every warm run, 17-58 with 2,000 kept).
        .config("spark.sql.codegen.cache.maxEntries", "2000")
        # A partitioned write (the lake's months, the usage records' status and month folders)
        # keeps a file open per partition instead of sorting its rows by partition first; past 8
        # partitions in a task the rest are sorted, as before. 10M usage records written in
        # status and month folders, warm, alternated: 80.6 s sorted, 77.5 s not (the same
        # records unpartitioned: 69.7-76.9 s); the lake write of 10M rows 21.8 -> 19.9 s.
        .config("spark.sql.optimizer.plannedWrite.enabled", "false")
        .config("spark.sql.maxConcurrentOutputFileWriters", "8")
        .config("spark.driver.extraJavaOptions", driver_options)
        .config("spark.executor.extraJavaOptions", executor_options)
    )
    if settings.spark_page_size:
        # Spark sizes a page by the driver's memory and cores (32 MB at 2g and 2 cores), and
        # every hash aggregate task and broadcast hash relation takes at least one page, however
        # few its rows: see the settings' table and docs/test-times.md for a long-lived session.
        builder = builder.config("spark.buffer.pageSize", settings.spark_page_size)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def local_frame(spark, rows, schema):
    """A DataFrame of rows the driver holds (tuples in the order of `schema`, or dicts by
    column name; `schema` a StructType or a DDL string), of exactly that schema.

    Sent to the JVM as Arrow, so the plan reads a local relation. `spark.createDataFrame` of
    a Python list parallelizes the rows instead: every action that reads the frame then runs
    Python worker tasks to unpickle them again, seconds per run on the small frames a night
    joins many times (periods, run facts). A naive datetime is taken as UTC."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import DataType, StructType

    struct = schema if isinstance(schema, StructType) else DataType.fromDDL(schema)
    arrow = to_arrow_schema(struct)
    tuples = [tuple(r[n] for n in struct.names) if isinstance(r, dict) else r for r in rows]
    columns = list(zip(*tuples, strict=True)) if tuples else [()] * len(struct.fields)
    table = pa.table(
        [pa.array(c, type=f.type) for f, c in zip(arrow, columns, strict=True)], schema=arrow
    )
    return spark.createDataFrame(table, struct)


# Spark compiles Java for every new plan (whole-stage code, then each expression's evaluator),
# and the JIT compiles that again: a small `ledger run` (a generated quarter, ~1 MB of landing
# files) compiled ~590 classes, ~5 s on the driver's one planning thread and ~7 s of JIT on 2
# cores, for rows its interpreter evaluates in a fraction of that. Compiled code wins on volume:
# under `auto` a step whose input holds at least CODEGEN_MIN_BYTES uncompressed compiles, a
# smaller one runs interpreted. Measured side by side (bench/README.md): `ledger demo` (22.7 MB
# of CSV and JSON) 69 / 71 s compiled, 63 / 61 s interpreted; the benchmark's 100k night (4.4 MB
# of gzip) about even; its 1M night (44 MB of gzip) ingested in 20.0 s compiled, 31.7 s not.
CODEGEN_MIN_BYTES = 32 << 20
# A compressed file (gzip, snappy Parquet) counts this many times its bytes: roughly what the
# pipeline's inputs hold uncompressed.
COMPRESSED_FACTOR = 8


def uncompressed_bytes(size: int, compressed: bool) -> int:
    return size * COMPRESSED_FACTOR if compressed else size


def codegen_for(settings, input_bytes: int) -> bool:
    """Whether a step whose input holds `input_bytes` (uncompressed) compiles its plans
    (LEDGER_SPARK_CODEGEN)."""
    if settings.spark_codegen == "auto":
        return input_bytes >= CODEGEN_MIN_BYTES
    return settings.spark_codegen == "on"


def set_codegen(spark, on: bool) -> None:
    """Whole-stage and expression code generation on (Spark's default), or every plan
    interpreted. `factoryMode` is Spark's own switch between its compiled and interpreted
    evaluators: documented as internal, set by its test suites to run every expression both ways
    (FALLBACK, the default, compiles and interprets only what fails to compile), so a Spark
    upgrade must keep tests/test_spark_codegen.py passing. Without it (whole-stage code off
    alone) a small run compiled more classes, not fewer. Both are session settings, changed
    between steps."""
    spark.conf.set("spark.sql.codegen.wholeStage", "true" if on else "false")
    spark.conf.set("spark.sql.codegen.factoryMode", "FALLBACK" if on else "NO_CODEGEN")


def _under_spark_submit() -> bool:
    """True in a driver that spark-submit launched (it hands the JVM gateway over in env)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def stop_spark() -> None:
    global _SESSION
    if _SESSION is not None:
        _SESSION.stop()
        _SESSION = None
