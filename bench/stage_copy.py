"""Staging COPY, side by side in one process on the same rows: `copy_parquet` as CSV (the path
before binary COPY, still its fallback), `copy_parquet` as binary COPY, and the bench's bare
COPY reference (the same rows exported as CSV by Postgres, then COPYed from that file into an
empty copy of the table with nothing around it). Rows are a mart-sized Parquet folder with
inference_spend_daily's columns, generated with pyarrow (no Spark).

    .venv/bin/python bench/stage_copy.py --rows 1500000 --repeat 3

Two targets: the typed staging table (`staging.inference_spend_daily`: date, text, numeric)
and, as the bench's (b') does, a table of text columns. Each time is the median of the
repeats; the order of the three paths rotates between repeats. Both copy_parquet paths are
checked to load exactly the rows of the other (EXCEPT ALL both ways is empty).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MART = "inference_spend_daily"
PARTS = 4


def _money(rng, n: int, nulls: bool) -> pa.Array:
    """decimal(38,10) from int64 unscaled values (-1e6 .. 1e9 dollars), built from buffers
    (a Decimal per value would take longer than the copies measured)."""
    unscaled = rng.integers(-(10**16), 9 * 10**18, n, dtype=np.int64)
    unscaled[:: max(n // 1000, 1)] = 0
    words = np.empty((n, 2), np.int64)
    words[:, 0], words[:, 1] = unscaled, unscaled >> 63
    validity = None
    if nulls:
        validity = pa.py_buffer(np.packbits(rng.random(n) > 0.1, bitorder="little"))
    return pa.Array.from_buffers(pa.decimal128(38, 10), n, [validity, pa.py_buffer(words)])


def _strings(rng, values: list[str], n: int) -> pa.Array:
    return pa.array(np.array(values, dtype=object)[rng.integers(0, len(values), n)], pa.string())


def generate(folder: Path, rows: int) -> list[str]:
    """A Spark-style output folder (part files, `_SUCCESS`) in the mart's column order."""
    from inference_ledger import contracts

    columns = [c.name for c in contracts.columns("marts", MART)]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(16)
    for part in range(PARTS):
        n = rows // PARTS + (rows % PARTS if part == 0 else 0)
        days = rng.integers(19_000, 20_500, n).astype(np.int32)
        data = {
            "usage_date": pa.array(days).cast(pa.date32()),
            "provider": _strings(rng, ["Microsoft", "OpenAI"], n),
            "service_name": _strings(rng, ["Azure OpenAI", "Virtual Machines", "Compute, GPU"], n),
            "region": _strings(rng, ["eastus", "westeurope", "swedencentral", "(none)"], n),
            "sku": _strings(rng, [f'meter {k} ND96 "v5"' for k in range(300)], n),
            "model_id": _strings(rng, ["gpt-4o", "gpt-4o-mini", "o3", "(none)"], n),
            "token_direction": _strings(rng, ["input", "output", "(none)"], n),
            "workload": _strings(rng, ["inference", "training", "other"], n),
            "billed_cost_usd": _money(rng, n, nulls=False),
            "effective_cost_usd": _money(rng, n, nulls=False),
            "consumed_quantity": _money(rng, n, nulls=True),
            "consumed_unit": _strings(rng, ["1M tokens", "1 Hour", "", "1 GB/Month"], n),
            "month_status": _strings(rng, ["provisional", "final"], n),
        }
        pq.write_table(pa.table({c: data[c] for c in columns}), folder / f"part-{part:05d}.parquet")
    (folder / "_SUCCESS").write_text("")
    return columns


def _table(cur, name: str, like: str | None, columns: list[str]) -> None:
    """An empty temp table: a copy of `like`, or text columns (as the bench's (b'))."""
    from psycopg2 import sql

    cur.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(sql.Identifier(name)))
    if like:
        body = sql.SQL("(LIKE {} INCLUDING DEFAULTS)").format(sql.Identifier(*like.split(".")))
    else:
        body = sql.SQL("({})").format(
            sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in columns)
        )
    cur.execute(sql.SQL("CREATE TEMP TABLE {} ").format(sql.Identifier(name)) + body)


def _timed(conn, action) -> float:
    conn.commit()
    t0 = time.perf_counter()
    action()
    conn.commit()
    return time.perf_counter() - t0


def measure(conn, folder: Path, columns: list[str], like: str | None, repeat: int) -> dict:
    """Median seconds of csv / binary copy_parquet and the bare COPY into fresh tables."""
    from inference_ledger.db import copy_parquet

    cur = conn.cursor()
    csv_file = folder.parent / "bare.csv"
    for name in ("t_csv", "t_binary", "t_bare"):
        _table(cur, name, like, columns)
    copy_parquet(conn, "pg_temp", "t_csv", columns, folder, binary=False)
    with open(csv_file, "w", encoding="utf-8") as fh:
        cur.copy_expert("COPY pg_temp.t_csv TO STDOUT WITH (FORMAT csv)", fh)

    def bare():
        with open(csv_file, "rb") as fh:
            cur.copy_expert("COPY pg_temp.t_bare FROM STDIN WITH (FORMAT csv)", fh)

    paths = {
        "copy_parquet csv": lambda: copy_parquet(
            conn, "pg_temp", "t_csv", columns, folder, binary=False
        ),
        "copy_parquet binary": lambda: copy_parquet(
            conn, "pg_temp", "t_binary", columns, folder, binary=True
        ),
        "bare COPY (reference)": bare,
    }
    seconds: dict[str, list[float]] = {k: [] for k in paths}
    names = list(paths)
    for i in range(repeat):
        for name in names[i % 3 :] + names[: i % 3]:
            table = {"copy_parquet csv": "t_csv", "copy_parquet binary": "t_binary"}.get(name)
            _table(cur, table or "t_bare", like, columns)
            seconds[name].append(_timed(conn, paths[name]))
    for a, b in (("t_csv", "t_binary"), ("t_binary", "t_csv")):
        cur.execute(f"SELECT count(*) FROM (TABLE {a} EXCEPT ALL TABLE {b}) x")
        assert cur.fetchone()[0] == 0, f"{a} has rows {b} does not"
    cur.execute("SELECT count(*) FROM t_binary")
    rows = cur.fetchone()[0]
    conn.commit()
    csv_file.unlink()
    median = {k: statistics.median(v) for k, v in seconds.items()}
    bare_s = median["bare COPY (reference)"]
    return {
        "rows": rows,
        "paths": {
            k: {
                "seconds": round(s, 3),
                "all_seconds": [round(x, 3) for x in seconds[k]],
                "rows_per_s": round(rows / s),
                "rate_vs_bare": round(bare_s / s, 2),
            }
            for k, s in median.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(__file__).parent / "work" / "stage_copy")
    args = parser.parse_args()
    from inference_ledger.db import connect, database_url, migrate

    load_start = os.getloadavg()
    folder = args.work / MART
    columns = generate(folder, args.rows)
    url = database_url()
    migrate(url)
    conn = connect(url)
    try:
        results = {
            "typed (staging.inference_spend_daily)": measure(
                conn, folder, columns, f"staging.{MART}", args.repeat
            ),
            "text columns (as the bench's b')": measure(conn, folder, columns, None, args.repeat),
        }
    finally:
        conn.close()
        shutil.rmtree(args.work, ignore_errors=True)
    print(
        f"cores {os.cpu_count()}, load average at start {load_start[0]:.2f}, at end "
        f"{os.getloadavg()[0]:.2f}; {args.rows:,} rows, {PARTS} part files, median of "
        f"{args.repeat}"
    )
    for target, r in results.items():
        print(f"\n{target}: {r['rows']:,} rows")
        print("| path | s (median) | all s | rows/s | rate vs bare |\n|---|--:|--:|--:|--:|")
        for name, p in r["paths"].items():
            runs = " / ".join(map(str, p["all_seconds"]))
            print(
                f"| {name} | {p['seconds']} | {runs} | {p['rows_per_s']:,} | {p['rate_vs_bare']} |"
            )


if __name__ == "__main__":
    main()
