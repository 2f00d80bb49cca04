"""COPY loading of Spark-style Parquet output: exact decimals, NULL vs empty string, dates,
timestamps, quoted identifiers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inference_ledger.db import copy_parquet, truncate

SPEND_COLUMNS = [
    "usage_date",
    "provider",
    "service_name",
    "region",
    "sku",
    "workload",
    "billed_cost_usd",
    "effective_cost_usd",
    "consumed_quantity",
    "consumed_unit",
]
MONEY = pa.decimal128(38, 10)
SPEND_TYPES = [pa.date32()] + [pa.string()] * 5 + [MONEY] * 3 + [pa.string()]


def _parquet(folder, columns, types, *parts):
    """A Spark-style output folder: one part file per list of rows, and a _SUCCESS marker."""
    folder.mkdir(parents=True)
    schema = pa.schema(list(zip(columns, types, strict=True)))
    for i, rows in enumerate(parts):
        table = pa.Table.from_pylist([dict(zip(columns, r, strict=True)) for r in rows], schema)
        pq.write_table(table, folder / f"part-{i:05d}-x-c000.snappy.parquet")
    (folder / "_SUCCESS").write_text("")
    return folder


def test_round_trip_is_exact(pg_conn, tmp_path):
    D = Decimal
    out = _parquet(
        tmp_path / "out",
        SPEND_COLUMNS,
        SPEND_TYPES,
        [
            (date(2024, 1, 31), "azure", "Azure OpenAI", "eastus", "gpt-4o", "inference",
             D("12345678901234567890.1234567890"), D("-0.0000000001"), None, None),
            (date(2024, 2, 29), "azure", "Compute, GPU", "westeurope", 'ND96 "v5"', "training",
             D(0), D("9999999999999999999999999999.9999999999"), D("1.5"), ""),
        ],
        [(date(2024, 12, 31), "azure", "Storage", "eastus", "multi\nline", "other",
          D(1), D(2), D(3), "1M tokens")],
    )  # fmt: skip
    loaded = copy_parquet(pg_conn, "staging", "inference_spend_daily", SPEND_COLUMNS, out)
    assert loaded == 3

    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT usage_date, service_name, sku, billed_cost_usd, effective_cost_usd,"
            " consumed_quantity, consumed_unit FROM staging.inference_spend_daily ORDER BY 1"
        )
        rows = cur.fetchall()
    assert rows == [
        (
            date(2024, 1, 31),
            "Azure OpenAI",
            "gpt-4o",
            Decimal("12345678901234567890.1234567890"),
            Decimal("-0.0000000001"),
            None,
            None,
        ),
        (
            date(2024, 2, 29),
            "Compute, GPU",
            'ND96 "v5"',
            Decimal("0E-10"),
            Decimal("9999999999999999999999999999.9999999999"),
            Decimal("1.5000000000"),
            "",
        ),
        (date(2024, 12, 31), "Storage", "multi\nline", 1, 2, 3, "1M tokens"),
    ]
    assert str(rows[0][3]) == "12345678901234567890.1234567890"  # no float on the way

    truncate(pg_conn, "staging", "inference_spend_daily")
    with pg_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM staging.inference_spend_daily")
        assert cur.fetchone() == (0,)


def test_timestamps_keep_their_instant(pg_conn, tmp_path):
    utc = pa.timestamp("us", tz="UTC")
    plus_two = timezone(timedelta(hours=2))
    out = _parquet(
        tmp_path / "runs",
        ["run_id", "command", "status", "started_at", "finished_at"],
        [pa.string(), pa.string(), pa.string(), utc, utc],
        [
            ("test_db_copy_1", "run", "succeeded", datetime(2024, 1, 1, tzinfo=UTC),
             datetime(2024, 3, 31, 23, 59, 59, 123456, tzinfo=plus_two)),
            ("test_db_copy_2", "run", "running", datetime(2024, 6, 30, 12, tzinfo=UTC), None),
        ],
    )  # fmt: skip
    columns = ["run_id", "command", "status", "started_at", "finished_at"]
    assert copy_parquet(pg_conn, "audit", "runs", columns, out) == 2
    cur = pg_conn.cursor()
    cur.execute("SELECT started_at, finished_at FROM audit.runs WHERE run_id LIKE 'test_db_copy_%'")
    assert sorted(cur.fetchall()) == [
        (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 31, 23, 59, 59, 123456, plus_two)),
        (datetime(2024, 6, 30, 12, tzinfo=UTC), None),
    ]


def test_identifiers_are_quoted_not_spliced(pg_conn, tmp_path):
    pg_conn.cursor().execute('CREATE TEMP TABLE "Odd Table" ("Amount USD" numeric(38,10))')
    out = _parquet(tmp_path / "odd", ["Amount USD"], [MONEY], [(Decimal("0.1"),)])
    assert copy_parquet(pg_conn, "pg_temp", "Odd Table", ["Amount USD"], out) == 1


def test_copy_parquet_streams_spark_output_exactly(spark, pg_conn, tmp_path):
    """The staging path: Spark's Parquet output COPYed by name, batch by batch, with NULL
    and empty string kept apart and decimals exact at scale 10."""
    from inference_ledger.db import copy_parquet

    schema = (
        "consumed_unit string, billed_cost_usd decimal(38,10), usage_date date,"
        " provider string, service_name string, region string, sku string, workload string,"
        " effective_cost_usd decimal(38,10), consumed_quantity decimal(38,10)"
    )
    rows = [
        (
            "",
            Decimal("12345678901234567890.1234567890"),
            date(2024, 1, 31),
            "azure",
            'Compute, "GPU"',
            "eastus",
            "multi\nline",
            None,
            Decimal("-0.0000000001"),
            None,
        ),
        (None, Decimal(0), date(2024, 2, 29), "azure", "x", "r", "s", "other", Decimal(1), None),
    ]
    # Two part files, columns in another order than the table's.
    spark.createDataFrame(rows, schema).repartition(2).write.parquet(str(tmp_path / "out"))
    truncate(pg_conn, "staging", "inference_spend_daily")
    loaded = copy_parquet(
        pg_conn, "staging", "inference_spend_daily", SPEND_COLUMNS, tmp_path / "out"
    )
    assert loaded == 2
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT usage_date, service_name, sku, workload, billed_cost_usd, effective_cost_usd,"
            " consumed_quantity, consumed_unit FROM staging.inference_spend_daily"
            " ORDER BY usage_date"
        )
        got = cur.fetchall()
    assert got == [
        (
            date(2024, 1, 31),
            'Compute, "GPU"',
            "multi\nline",
            None,
            Decimal("12345678901234567890.1234567890"),
            Decimal("-0.0000000001"),
            None,
            "",
        ),
        (date(2024, 2, 29), "x", "s", "other", Decimal(0), Decimal(1), None, None),
    ]
    pg_conn.rollback()


def test_copy_parquet_constants_renames_and_missing_columns(spark, pg_conn, tmp_path):
    from inference_ledger.db import copy_parquet

    spark.createDataFrame([("a.csv", 7)], "source_file string, n long").write.parquet(
        str(tmp_path / "q")
    )
    with pg_conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE q (run_id text, path text, n bigint)")
    loaded = copy_parquet(
        pg_conn,
        "pg_temp",
        "q",
        ["run_id", "path", "n"],
        tmp_path / "q",
        constants={"run_id": "run-1"},
        renamed={"path": "source_file"},
    )
    assert loaded == 1
    with pg_conn.cursor() as cur:
        cur.execute("SELECT run_id, path, n FROM q")
        assert cur.fetchall() == [("run-1", "a.csv", 7)]
    with pytest.raises(ValueError, match=r"no column\(s\) \['path'\]"):
        copy_parquet(pg_conn, "pg_temp", "q", ["path"], tmp_path / "q")
    pg_conn.rollback()


def test_copy_parquet_unreadable_part_aborts_the_copy(spark, pg_conn, tmp_path):
    """A file that cannot be read while COPY is streaming stops the COPY with Arrow's error
    (the rows sent before it are not committed: the caller's transaction rolls back)."""
    import pyarrow as pa

    from inference_ledger.db import copy_parquet

    out = tmp_path / "out"
    spark.createDataFrame([(i,) for i in range(3)], "n long").coalesce(1).write.parquet(str(out))
    (out / "part-99999-broken.parquet").write_bytes(b"not parquet at all")
    with pg_conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE b (n bigint)")
    pg_conn.commit()
    with pytest.raises(pa.ArrowInvalid, match="part-99999-broken.parquet"):
        copy_parquet(pg_conn, "pg_temp", "b", ["n"], out)
    pg_conn.rollback()
    with pg_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM b")
        assert cur.fetchone()[0] == 0
