"""inference_ledger.spark: the session's JVM options and memory page, and local_frame
(driver-held rows as a local relation of exactly the given schema)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from inference_ledger.settings import load_settings
from inference_ledger.spark import java_options, local_frame

DDL = (
    "name string, n long, day date, at timestamp, amount decimal(38,10), ok boolean,"
    " tags array<string>"
)


def test_values_and_types_are_kept_exactly(spark):
    rows = [
        ("a", 9007199254740993, date(2024, 2, 29), datetime(2024, 3, 1, 23, 59, 59, 123456),
         Decimal("12345678901234567890123456.0123456789"), True, ["x", "y"]),
        (None, None, None, None, None, None, None),
    ]  # fmt: skip
    df = local_frame(spark, rows, DDL)
    assert [(f.name, f.dataType.simpleString()) for f in df.schema.fields] == [
        ("name", "string"),
        ("n", "bigint"),
        ("day", "date"),
        ("at", "timestamp"),
        ("amount", "decimal(38,10)"),
        ("ok", "boolean"),
        ("tags", "array<string>"),
    ]
    got = [tuple(r) for r in df.collect()]
    # A naive datetime is UTC (the session's time zone): it comes back unchanged.
    assert got == rows
    at = df.selectExpr("CAST(unix_micros(at) AS BIGINT) AS us").first()["us"]
    assert at == int(datetime(2024, 3, 1, 23, 59, 59, 123456, tzinfo=UTC).timestamp() * 1e6)


def test_dict_rows_by_name_and_empty_frames(spark):
    df = local_frame(spark, [{"b": 2, "a": "x"}], "a string, b long")
    assert [tuple(r) for r in df.collect()] == [("x", 2)]
    empty = local_frame(spark, [], "a string, b long")
    assert empty.count() == 0 and empty.columns == ["a", "b"]


def test_the_plan_reads_a_local_relation_not_python_rows(spark):
    plan = local_frame(spark, [("x",)], "a string")._jdf.queryExecution().executedPlan()
    text = plan.toString()
    assert "LocalTableScan" in text and "ExistingRDD" not in text


def test_ledger_spark_java_options_come_after_the_projects_own(monkeypatch):
    monkeypatch.setenv("LEDGER_SPARK_CLASS_ARCHIVE", "off")
    monkeypatch.setenv("LEDGER_SPARK_JAVA_OPTIONS", " -XX:TieredStopAtLevel=1 -Xss4m ")
    driver, executor = java_options(load_settings())
    assert executor == "-XX:-DontCompileHugeMethods -XX:TieredStopAtLevel=1 -Xss4m"
    assert driver.startswith("-Dlog4j.configurationFile=")
    assert driver.endswith(" -XX:-DontCompileHugeMethods -XX:TieredStopAtLevel=1 -Xss4m")
    monkeypatch.delenv("LEDGER_SPARK_JAVA_OPTIONS")
    assert java_options(load_settings())[1] == "-XX:-DontCompileHugeMethods"


def test_the_session_jvm_was_started_with_the_projects_options(spark):
    """The driver options reach the JVM that get_spark launched (not only its conf). The test
    run's own session is started without LEDGER_SPARK_JAVA_OPTIONS (tests/conftest.py)."""
    runtime = spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(runtime.getInputArguments())
    assert "-XX:-DontCompileHugeMethods" in arguments
    assert any(a.startswith("-Dlog4j.configurationFile=") for a in arguments)
    assert "-XX:TieredStopAtLevel=1" not in arguments


def test_the_page_size_setting_is_checked_and_unset_by_default(monkeypatch):
    monkeypatch.delenv("LEDGER_SPARK_PAGE_SIZE", raising=False)
    assert load_settings().spark_page_size is None
    monkeypatch.setenv("LEDGER_SPARK_PAGE_SIZE", " 1M ")
    assert load_settings().spark_page_size == "1m"
    monkeypatch.setenv("LEDGER_SPARK_PAGE_SIZE", "4194304")
    assert load_settings().spark_page_size == "4194304"
    for bad in ("one megabyte", "-1m", "0", "1.5m"):
        monkeypatch.setenv("LEDGER_SPARK_PAGE_SIZE", bad)
        with pytest.raises(ValueError, match="LEDGER_SPARK_PAGE_SIZE must be a byte size"):
            load_settings()


def test_the_session_memory_manager_takes_the_page_size(spark):
    """The test run sets LEDGER_SPARK_PAGE_SIZE=1m (tests/conftest.py): the session's memory
    manager hands out pages of 1 MB, not the 32 MB Spark picks for a 2g driver on 2 cores."""
    assert spark.conf.get("spark.buffer.pageSize") == "1m"
    manager = spark._jsc.sc().env().memoryManager()
    assert manager.pageSizeBytes() == 1024 * 1024
