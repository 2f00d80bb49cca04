"""The benchmark's references, timed on the same files and rows as the night: (a) DuckDB doing
the same ingest + dedupe + aggregation by hand, (b) a bare COPY of the staged rows into
Postgres, (b') the staging path against a bare COPY on a bulk table (the usage facts)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

DUCKDB_MEMORY = "10GB"


def duckdb_reference(landing: Path, work: Path, threads: int) -> dict:
    """(a) DuckDB on the same files: usage pages -> one row per result -> dedupe on the natural
    key (newest file wins) -> Parquet -> monthly tokens per channel and model; billing CSV ->
    Parquet -> daily cost per day, service, region, meter. What a user could do by hand."""
    import duckdb

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    # It peaked at ~8 GB at 10M results (not binding there); at 50M it spills to disk instead of
    # taking the memory the night's JVM and Postgres hold.
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
    con.execute(f"SET temp_directory = '{work / 'spill'}'")
    usage_rows, usage_s = _duckdb_usage(con, landing, work)
    billing_rows, billing_s = _duckdb_billing(con, landing, work)
    con.close()
    shutil.rmtree(work, ignore_errors=True)
    return {
        "usage_seconds": round(usage_s, 3),
        "usage_facts": int(usage_rows[0] or 0),
        "usage_groups": int(usage_rows[1]),
        "billing_seconds": round(billing_s, 3),
        "billing_groups": int(billing_rows[0]),
        "threads": threads,
        "duckdb": duckdb.__version__,
    }


def _duckdb_usage(con, landing: Path, work: Path) -> tuple[tuple, float]:
    """Usage pages -> deduplicated results as Parquet -> monthly groups: (sum of facts,
    groups), seconds."""
    result = (
        "STRUCT(object VARCHAR, input_tokens BIGINT, output_tokens BIGINT,"
        " input_cached_tokens BIGINT, input_audio_tokens BIGINT, output_audio_tokens BIGINT,"
        " num_model_requests BIGINT, project_id VARCHAR, user_id VARCHAR, api_key_id VARCHAR,"
        " model VARCHAR, batch BOOLEAN, service_tier VARCHAR)"
    )
    columns = {
        "object": "VARCHAR",
        "data": f"STRUCT(object VARCHAR, start_time BIGINT, end_time BIGINT, results {result}[])[]",
    }
    usage_glob = str(landing / "usage" / "*" / "*" / "*.jsonl.gz")
    t0 = time.perf_counter()
    con.execute(
        f"""
        COPY (
            WITH buckets AS (
                SELECT filename, unnest(data) AS b
                FROM read_json(?, format = 'newline_delimited', compression = 'gzip',
                               filename = true, columns = {columns!r})
            ), results AS (
                SELECT filename, regexp_extract(filename, '/usage/([^/]+)/', 1) AS channel,
                       to_timestamp(b.start_time) AS bucket_start_at,
                       to_timestamp(b.end_time) AS bucket_end_at, unnest(b.results) AS r
                FROM buckets
            )
            SELECT strftime(bucket_start_at, '%Y-%m') AS usage_month, channel, bucket_start_at,
                   bucket_end_at, r.project_id, r.model, r.batch, r.service_tier, r.user_id,
                   r.api_key_id, r.input_tokens, r.input_cached_tokens, r.output_tokens,
                   r.num_model_requests, filename AS source_file
            FROM results
            QUALIFY row_number() OVER (
                PARTITION BY channel, bucket_start_at, bucket_end_at, r.project_id, r.model,
                             r.batch, r.service_tier, r.user_id, r.api_key_id
                ORDER BY filename DESC) = 1
        ) TO '{work / "usage_facts"}' (FORMAT parquet, PARTITION_BY (usage_month))
        """,
        [usage_glob],
    )
    usage_rows = con.execute(
        f"""SELECT sum(n), count(*) FROM (
              SELECT usage_month, channel, model, sum(input_tokens), sum(output_tokens),
                     sum(input_cached_tokens), sum(num_model_requests), count(*) AS n
              FROM read_parquet('{work / "usage_facts"}/**/*.parquet', hive_partitioning = true)
              GROUP BY ALL)"""
    ).fetchone()
    usage_s = time.perf_counter() - t0
    return usage_rows, usage_s


def _duckdb_billing(con, landing: Path, work: Path) -> tuple[tuple, float]:
    """Billing CSV -> Parquet -> daily groups: (groups,), seconds."""
    billing_glob = str(landing / "billing" / "azure" / "*" / "*" / "*" / "*.csv.gz")
    t0 = time.perf_counter()
    con.execute(
        f"""
        COPY (
            SELECT strptime("Date", '%m/%d/%Y')::DATE AS usage_date, "MeterCategory" AS service,
                   "ResourceLocation" AS region, "MeterName" AS sku, "ResourceId",
                   "Tags", CAST("CostInBillingCurrency" AS DECIMAL(38, 10)) AS billed_cost,
                   CAST("Quantity" AS DECIMAL(38, 10)) AS quantity, "UnitOfMeasure",
                   strftime(strptime("Date", '%m/%d/%Y'), '%Y-%m') AS billing_month
            FROM read_csv(?, header = true, all_varchar = true)
        ) TO '{work / "billing_lines"}' (FORMAT parquet, PARTITION_BY (billing_month))
        """,
        [billing_glob],
    )
    billing_rows = con.execute(
        f"""SELECT count(*) FROM (
              SELECT usage_date, service, region, sku,
                     CASE WHEN "Tags" LIKE '%inference%' THEN 'inference' ELSE 'other' END,
                     sum(billed_cost), sum(quantity)
              FROM read_parquet('{work / "billing_lines"}/**/*.parquet', hive_partitioning = true)
              GROUP BY ALL)"""
    ).fetchone()
    billing_s = time.perf_counter() - t0
    return billing_rows, billing_s


def bare_copy_reference(url: str, work: Path) -> dict:
    """(b) The staged rows (as they are in `staging` now) exported to CSV, then COPYed back into
    an empty copy of each table: the fastest Postgres can take these rows."""
    from psycopg2 import sql

    from inference_ledger.db import connect
    from inference_ledger.run.context import MARTS

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    conn = connect(url)
    rows, seconds = 0, 0.0
    try:
        with conn.cursor() as cur:
            for mart in MARTS:
                path = work / f"{mart}.csv"
                src = sql.Identifier("staging", mart)
                with open(path, "w", encoding="utf-8") as fh:
                    cur.copy_expert(
                        sql.SQL("COPY {} TO STDOUT WITH (FORMAT csv)").format(src).as_string(cur),
                        fh,
                    )
                dst = sql.Identifier(f"bench_copy_{mart}")
                cur.execute(
                    sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(dst, src)
                )
                t0 = time.perf_counter()
                with open(path, "rb") as fh:
                    cur.copy_expert(
                        sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv)").format(dst).as_string(cur),
                        fh,
                    )
                conn.commit()
                seconds += time.perf_counter() - t0
                rows += cur.rowcount
    finally:
        conn.rollback()
        conn.close()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "rows": rows,
        "seconds": round(seconds, 4),
        "rows_per_s": round(rows / seconds) if seconds else None,
    }


def bulk_copy_reference(url: str, lake_dir, work: Path) -> dict:
    """The marts are small (hundreds of rows), so `stage COPY` is mostly fixed cost. This
    measures the same staging path on a bulk table: the night's usage facts as the lake holds
    them (Parquet), streamed into Postgres by `db.copy_parquet` (what `publish.stage` does
    with the marts), against a bare COPY of the same rows from a CSV file written beforehand
    (untimed) into the same kind of table: the contract's column types, as a staging table
    has (until the binary COPY these were text columns, which only the CSV path parses alike)."""
    from psycopg2 import sql

    from inference_ledger import contracts, lake
    from inference_ledger.db import connect, copy_parquet

    contract = contracts.columns("lake", "usage_facts")
    cols = [c.name for c in contract]
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    conn = connect(url)
    csv_path = work / "usage_facts.csv"
    try:
        with conn.cursor() as cur:
            for t in ("bench_ours", "bench_bare"):
                cur.execute(
                    sql.SQL("CREATE TEMP TABLE {} ({})").format(
                        sql.Identifier(t),
                        sql.SQL(", ").join(
                            sql.SQL("{} {}").format(
                                sql.Identifier(c.name), sql.SQL(c.postgres_type)
                            )
                            for c in contract
                        ),
                    )
                )
        t0 = time.perf_counter()
        rows = copy_parquet(
            conn, "pg_temp", "bench_ours", cols, lake.table_path(lake_dir, "usage_facts")
        )
        conn.commit()
        ours = time.perf_counter() - t0
        with conn.cursor() as cur, open(csv_path, "w", encoding="utf-8") as fh:
            cur.copy_expert("COPY pg_temp.bench_ours TO STDOUT WITH (FORMAT csv)", fh)
        t0 = time.perf_counter()
        with conn.cursor() as cur, open(csv_path, "rb") as fh:
            cur.copy_expert("COPY pg_temp.bench_bare FROM STDIN WITH (FORMAT csv)", fh)
        conn.commit()
        bare = time.perf_counter() - t0
    finally:
        conn.rollback()
        conn.close()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "rows": rows,
        "staging_path_seconds": round(ours, 3),
        "bare_copy_seconds": round(bare, 3),
        "staging_path_rows_per_s": round(rows / ours) if ours else None,
        "bare_copy_rows_per_s": round(rows / bare) if bare else None,
    }
