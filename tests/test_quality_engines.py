"""Which of GX's engines a lake or ingest suite runs on (`quality.runner.local_rows`); the
suites' results on each: tests/test_quality_lake.py."""

from __future__ import annotations

from decimal import Decimal as D

from inference_ledger.quality import runner


def test_gx_validates_small_frames_in_pandas_and_the_rest_in_spark(spark, monkeypatch):
    """A frame of at most LOCAL_MAX_ROWS rows whose suite reads alike in both engines is
    handed to GX as pandas rows, its integers exact; a column pair that counts a row with one
    side missing, a range over decimals, a floating column (NaN) or more rows go to Spark."""
    e = runner.gx_module().expectations
    df = spark.createDataFrame(
        [("a", 2**62 + 1, 7, D("0.3"), 1.0), ("b", None, 9, D("0.1"), float("nan"))],
        "k string, n bigint, m bigint, rate decimal(20,10), x double",
    )
    nulls = runner.Suite("t", [e.ExpectColumnValuesToBeNull(column="k")])
    rows = runner.local_rows(nulls, df)
    assert rows is not None and list(rows["n"]) == [2**62 + 1, None]  # not 4.6e18 as a float
    ints = runner.Suite("t", [e.ExpectColumnValuesToBeBetween(column="m", min_value=0)])
    assert runner.local_rows(ints, df) is not None
    decimals = runner.Suite("t", [e.ExpectColumnValuesToBeBetween(column="rate", max_value=0.3)])
    assert runner.local_rows(decimals, df) is None
    pair = e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="m", column_B="n")
    assert runner.local_rows(runner.Suite("t", [pair]), df) is None
    present = e.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A="m", column_B="n", ignore_row_if="either_value_is_missing"
    )
    assert runner.local_rows(runner.Suite("t", [present]), df) is not None
    nan = runner.Suite("t", [e.ExpectColumnValuesToBeNull(column="x")])
    assert runner.local_rows(nan, df) is None
    monkeypatch.setattr(runner, "LOCAL_MAX_ROWS", 1)
    assert runner.local_rows(nulls, df) is None
