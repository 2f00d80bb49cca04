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
    with pytest.raises(pa.ArrowInvalid, match="part-99999-broken.parquet") as failed:
        copy_parquet(pg_conn, "pg_temp", "b", ["n"], out)
    assert failed.value.__notes__ == [f"while copying {out} into pg_temp.b"]
    pg_conn.rollback()
    with pg_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM b")
        assert cur.fetchone()[0] == 0


# Binary COPY (db.pgcopy): every type it writes, against exact values and against the CSV path.
EDGE_MONEY = [
    Decimal("12345678901234567890.1234567890"),  # needs more than 64 bits unscaled
    Decimal("-0.0000000001"),
    Decimal(0),
    None,
    Decimal("9999999999999999999999999999.9999999999"),  # numeric(38,10)'s largest
    Decimal("-9999999999999999999999999999.9999999999"),
    Decimal("1.5"),
    Decimal("-922337203.6854775808"),  # int64's smallest unscaled
    Decimal("922337203.6854775807"),
    Decimal("0.0001"),
    Decimal("-12.34"),
    Decimal("1000000"),
]
EDGE_TYPES = {
    "amount": (MONEY, "numeric(38,10)"),
    "rate": (pa.decimal128(12, 3), "numeric(12,3)"),
    "label": (pa.string(), "text"),
    "day": (pa.date32(), "date"),
    "at": (pa.timestamp("us", tz="UTC"), "timestamptz"),
    "at_ns": (pa.int64(), "timestamptz"),  # nanoseconds, made a timestamp[ns] below
    "local_at": (pa.timestamp("ms"), "timestamp"),
    "n": (pa.int64(), "bigint"),
    "small": (pa.int32(), "integer"),
    "flag": (pa.bool_(), "boolean"),
    "ratio": (pa.float64(), "double precision"),
    "count_as_numeric": (pa.int64(), "numeric"),
    "amount_as_text": (MONEY, "text"),
}
NS_EPOCH = int(datetime(2024, 3, 31, 23, 59, 59, tzinfo=UTC).timestamp()) * 10**9


def _edge_rows():
    plus_two = timezone(timedelta(hours=2))
    labels = ["", None, 'Compute, "GPU"', "multi\nline", "ünïcode €", "\\N", "NULL", "x" * 300]
    days = [date(2000, 1, 1), date(1999, 12, 31), date(1969, 7, 20), None, date(2024, 2, 29)]
    ats = [
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(1960, 5, 1, 1, 2, 3, 5, tzinfo=UTC),
        datetime(2024, 3, 31, 23, 59, 59, 123456, tzinfo=plus_two),
        None,
    ]
    # Fractions of a microsecond, including halves: Postgres rounds the CSV text's fraction
    # (through a double, half to even); the binary path must land on the same microsecond.
    ns = [NS_EPOCH + f for f in (0, 500, 1_500, 2_500, 123_456_789, 999_999_999)]
    ints = [0, -1, 2**63 - 1, -(2**63), None, 42]
    rows = []
    for i, amount in enumerate(EDGE_MONEY):
        rows.append(
            {
                "amount": amount,
                "rate": None if i == 2 else Decimal(i * 1001) / 1000 - 3,
                "label": labels[i % len(labels)],
                "day": days[i % len(days)],
                "at": ats[i % len(ats)],
                "at_ns": ns[i % len(ns)] if i % 7 else None,
                "local_at": datetime(2025, 9, 15, 12, 30, 45, 123000) if i % 3 else None,
                "n": ints[i % len(ints)],
                "small": None if i % 4 == 1 else -(2**31) + i,
                "flag": [True, False, None][i % 3],
                "ratio": [0.1, -1e300, None, 1 / 3][i % 4],
                "count_as_numeric": ints[i % len(ints)],
                "amount_as_text": amount,
            }
        )
    return rows


def _edge_parquet(folder):
    schema = pa.schema([(c, t) for c, (t, _) in EDGE_TYPES.items()])
    rows = _edge_rows()
    folder.mkdir(parents=True)
    # Two files, the second with one row: batches of different digit widths.
    for name, part in (("part-00000", rows[:-1]), ("part-00001", rows[-1:])):
        table = pa.Table.from_pylist(part, schema)
        at_ns = table.column("at_ns").cast(pa.timestamp("ns"))
        table = table.set_column(schema.get_field_index("at_ns"), "at_ns", at_ns)
        pq.write_table(table, folder / f"{name}.parquet")
    return folder


def _edge_table(cur, name):
    cols = ", ".join(f"{c} {pg}" for c, (_, pg) in EDGE_TYPES.items())
    cur.execute(f"CREATE TEMP TABLE {name} (id serial, {cols})")


def _count_binary_batches(monkeypatch) -> list[int]:
    from inference_ledger.db import pgcopy

    calls: list[int] = []
    rows = pgcopy.rows

    def counted(steps, columns, n):
        calls.append(n)
        return rows(steps, columns, n)

    monkeypatch.setattr(pgcopy, "rows", counted)
    return calls


def test_binary_copy_is_exact_and_the_same_as_csv(pg_conn, tmp_path, monkeypatch):
    out = _edge_parquet(tmp_path / "edge")
    columns = list(EDGE_TYPES)
    with pg_conn.cursor() as cur:
        _edge_table(cur, "t_binary")
        _edge_table(cur, "t_csv")
    batches = _count_binary_batches(monkeypatch)
    assert copy_parquet(pg_conn, "pg_temp", "t_binary", columns, out, binary=True) == 12
    assert batches == [11, 1]
    assert copy_parquet(pg_conn, "pg_temp", "t_csv", columns, out, binary=False) == 12
    assert batches == [11, 1]  # the CSV path wrote no binary rows
    with pg_conn.cursor() as cur:
        listed = ", ".join(columns)
        for a, b in (("t_binary", "t_csv"), ("t_csv", "t_binary")):
            cur.execute(
                f"SELECT count(*) FROM (SELECT {listed} FROM {a} EXCEPT ALL SELECT {listed} FROM {b}) x"
            )
            assert cur.fetchone() == (0,), f"{a} has rows {b} does not"
        cur.execute(
            "SELECT amount, amount::text, amount_as_text, label, day, at, n FROM t_binary ORDER BY id"
        )
        got = cur.fetchall()
        cur.execute("SELECT at_ns FROM t_binary ORDER BY id")
        at_ns = [r[0] for r in cur.fetchall()]
    assert [r[0] for r in got] == EDGE_MONEY
    assert [r[1] for r in got][:3] == [
        "12345678901234567890.1234567890",
        "-0.0000000001",
        "0.0000000000",
    ]
    assert got[4][1] == "9999999999999999999999999999.9999999999"
    assert got[7][1] == "-922337203.6854775808"
    # Text columns get what Arrow's cast writes, as the CSV path does.
    assert [r[2] for r in got][:4] == [
        "12345678901234567890.1234567890",
        "-1E-10",
        "0E-10",
        None,
    ]
    assert [r[3] for r in got][:8] == [
        "",
        None,
        'Compute, "GPU"',
        "multi\nline",
        "ünïcode €",
        "\\N",
        "NULL",
        "x" * 300,
    ]
    plus_two = timezone(timedelta(hours=2))
    assert [r[4] for r in got][:5] == [
        date(2000, 1, 1),
        date(1999, 12, 31),
        date(1969, 7, 20),
        None,
        date(2024, 2, 29),
    ]
    assert [r[5] for r in got][:4] == [
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(1960, 5, 1, 1, 2, 3, 5, tzinfo=UTC),
        datetime(2024, 3, 31, 23, 59, 59, 123456, tzinfo=plus_two),
        None,
    ]
    assert [r[6] for r in got][:6] == [0, -1, 2**63 - 1, -(2**63), None, 42]
    second = datetime(2024, 3, 31, 23, 59, 59, tzinfo=UTC)
    assert at_ns[0] is None
    assert at_ns[4] == second + timedelta(microseconds=123457)  # .123456789 s rounds up
    assert at_ns[5] == datetime(2024, 4, 1, tzinfo=UTC)  # .999999999 s carries into the next


def test_types_without_an_exact_binary_form_go_as_csv(pg_conn, tmp_path, monkeypatch):
    """A float into NUMERIC (Postgres parses the float's text), jsonb: the whole table goes as
    CSV, with the values the CSV path has always stored."""
    out = _parquet(
        tmp_path / "other",
        ["amount", "doc"],
        [pa.float64(), pa.string()],
        [(0.1, '{"a": 1}'), (None, None)],
    )
    with pg_conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE other (amount numeric(38,10), doc jsonb)")
    batches = _count_binary_batches(monkeypatch)
    assert copy_parquet(pg_conn, "pg_temp", "other", ["amount", "doc"], out, binary=True) == 2
    assert batches == []
    with pg_conn.cursor() as cur:
        cur.execute("SELECT amount, doc FROM other ORDER BY amount")
        assert cur.fetchall() == [(Decimal("0.1000000000"), {"a": 1}), (None, None)]


def test_plan_takes_only_pairs_with_the_same_value_as_csv():
    from inference_ledger.db import pgcopy

    def ok(arrow, pg, utc=True):
        return pgcopy.plan([arrow], [pg], [None], utc_session=utc) is not None

    assert ok(MONEY, "numeric") and ok(pa.int64(), "numeric") and ok(pa.int32(), "bigint")
    assert not ok(pa.float64(), "numeric") and not ok(pa.decimal256(40, 2), "numeric")
    assert not ok(pa.decimal128(5, -2), "numeric") and not ok(pa.string(), "jsonb")
    assert not ok(pa.float64(), "real") and ok(pa.float32(), "real")
    assert ok(pa.timestamp("us"), "timestamp with time zone")
    # A naive value is read in the session's zone by the CSV path: binary only in UTC.
    assert not ok(pa.timestamp("us"), "timestamp with time zone", utc=False)
    assert ok(pa.timestamp("us", tz="Europe/Paris"), "timestamp with time zone", utc=False)
    # A zoned value into a column without zone keeps its wall time in the CSV path.
    assert not ok(pa.timestamp("us", tz="Europe/Paris"), "timestamp without time zone")
    assert ok(pa.timestamp("us", tz="UTC"), "timestamp without time zone")
    assert pgcopy.plan([None], ["integer"], ["7"], utc_session=True) is None
    assert pgcopy.plan([None], ["text"], ["run-1"], utc_session=True) == [b"\x00\x00\x00\x05run-1"]


@pytest.mark.parametrize("binary", [True, False])
def test_a_rejected_row_names_the_table_and_the_row(pg_conn, tmp_path, binary):
    """Postgres' error says which table, row and column (both formats count rows from 1)."""
    import psycopg2

    out = _parquet(
        tmp_path / "big",
        ["n", "amount"],
        [pa.int64(), pa.decimal128(38, 0)],
        [(1, Decimal(5)), (2, Decimal(10) ** 30), (3, Decimal(1))],
    )
    with pg_conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE spend_rows (n bigint, amount numeric(38,10))")
    with pytest.raises(psycopg2.errors.NumericValueOutOfRange) as failed:
        copy_parquet(pg_conn, "pg_temp", "spend_rows", ["n", "amount"], out, binary=binary)
    assert "COPY spend_rows, line 2, column amount" in str(failed.value)
    pg_conn.rollback()


@pytest.mark.parametrize("scheme", ["s3a", "s3"])
def test_a_lake_on_s3_is_copied_like_the_same_local_folder(pg_conn, tmp_path, monkeypatch, scheme):
    """LEDGER_LAKE_URI=s3a://… (what Spark writes the lake with): the run's Parquet is read
    through s3fs with the environment's endpoint and keys (moto's S3 server here), rows and
    values as from the same files on disk, and the binary/CSV choice by the objects' sizes."""
    from tests.moto_support import moto_s3, s3_fs

    local = _edge_parquet(tmp_path / "edge")
    (local / "_SUCCESS").write_text("")
    columns = list(EDGE_TYPES)
    with moto_s3(monkeypatch):
        fs = s3_fs()
        fs.mkdir("lake")
        for f in sorted(local.iterdir()):
            fs.pipe_file(f"lake/ledger/_runs/r1/marts/edge/{f.name}", f.read_bytes())
        with pg_conn.cursor() as cur:
            for name in ("t_local", "t_s3", "t_s3_auto"):
                _edge_table(cur, name)
        url = f"{scheme}://lake/ledger/_runs/r1/marts/edge"
        assert copy_parquet(pg_conn, "pg_temp", "t_s3", columns, url, binary=True) == 12
        assert copy_parquet(pg_conn, "pg_temp", "t_s3_auto", columns, url) == 12
    assert copy_parquet(pg_conn, "pg_temp", "t_local", columns, local, binary=True) == 12
    listed = ", ".join(columns)
    with pg_conn.cursor() as cur:
        for a, b in (("t_s3", "t_local"), ("t_local", "t_s3"), ("t_s3_auto", "t_local")):
            cur.execute(
                f"SELECT count(*) FROM (SELECT {listed} FROM {a} EXCEPT ALL SELECT {listed} FROM {b}) x"
            )
            assert cur.fetchone() == (0,), f"{a} has rows {b} does not"


def test_a_missing_lake_folder_on_s3_names_it(pg_conn, monkeypatch):
    from tests.moto_support import moto_s3, s3_fs

    with moto_s3(monkeypatch):
        s3_fs().mkdir("lake")
        with pytest.raises(FileNotFoundError, match="lake/ledger/_runs/r2/marts/x"):
            copy_parquet(pg_conn, "staging", "x", ["a"], "s3a://lake/ledger/_runs/r2/marts/x")
