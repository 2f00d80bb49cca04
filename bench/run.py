"""`make bench`: the nightly pipeline at 1M / 10M usage results, stage by stage, against
references measured in the same process on the same files.

For each size: bulk landing data for one night (sample/bulk.py), then the real steps a nightly
run takes (ingest per source, aggregate + reconcile, stage COPY, audit (GX), publish, report),
each with wall time, rows/s and peak memory (this process + the Spark JVM; the embedded
Postgres separately). References: (a) DuckDB doing the same ingest + dedupe + aggregation on
the same files, (b) a bare COPY of the same staged rows into Postgres. Then the incremental
cost: the same night on top of N nights of history vs on an empty lake.

    python bench/run.py --sizes 1m,10m      # or: make bench SIZES=1m,10m
    python bench/run.py --quick             # a tiny smoke run (tests/test_bench.py)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
# (usage results, billing lines) per night.
SIZES = {
    "quick": (20_000, 2_000),
    "100k": (100_000, 10_000),
    "1m": (1_000_000, 100_000),
    "10m": (10_000_000, 1_000_000),
}
NIGHT = date(2025, 9, 15)  # inside the scenario's finance quarters (2024-Q1..2025-Q3)
# History nights are small: the point is that their size does not matter to one more night.
HISTORY_USAGE, HISTORY_BILLING = 2_000, 1_000


# ---------------------------------------------------------------- measuring


class MemorySampler:
    """Peak RSS of this process and its children (the Spark JVM) and, separately, of the
    embedded Postgres (not our child), sampled every 0.2 s in a thread."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.me = psutil.Process()
        self.peak_driver = self.peak_jvm = self.peak_pg = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def reset(self) -> None:
        self.peak_driver = self.peak_jvm = self.peak_pg = 0
        self.sample()

    def sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            self.peak_driver = max(self.peak_driver, self.me.memory_info().rss)
        jvm = pg = 0
        with contextlib.suppress(psutil.Error):
            for child in self.me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    jvm += child.memory_info().rss
        home = os.environ.get("LEDGER_HOME", "")
        with contextlib.suppress(psutil.Error):
            for p in psutil.process_iter(["name", "cmdline"]):
                cmd = " ".join(p.info["cmdline"] or [])
                if "postgres" in (p.info["name"] or "") and home and home in cmd:
                    pg += sum(c.memory_info().rss for c in [p, *p.children()])
        self.peak_jvm = max(self.peak_jvm, jvm)
        self.peak_pg = max(self.peak_pg, pg)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


MB = 1 << 20


class Stages:
    """Per stage: seconds, rows, rows/s and peak memory; in the order run."""

    def __init__(self, mem: MemorySampler):
        self.mem = mem
        self.rows: dict[str, dict] = {}

    @contextlib.contextmanager
    def stage(self, name: str, rows: int | None = None):
        self.mem.reset()
        t0 = time.perf_counter()
        info: dict = {"rows": rows}
        yield info
        seconds = time.perf_counter() - t0
        self.mem.sample()
        self.add(name, seconds, info.get("rows"))

    def add(self, name: str, seconds: float, rows: int | None = None) -> None:
        self.rows[name] = {
            "seconds": round(seconds, 3),
            "rows": rows,
            "rows_per_s": round(rows / seconds) if rows and seconds > 0 else None,
            "peak_driver_mb": round(self.mem.peak_driver / MB),
            "peak_jvm_mb": round(self.mem.peak_jvm / MB),
            "peak_postgres_mb": round(self.mem.peak_pg / MB),
        }

    def seconds(self, *names: str) -> float:
        return sum(self.rows[n]["seconds"] for n in names if n in self.rows)


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    load = os.getloadavg()
    return {
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / (1 << 30), 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "load_avg_at_start": [round(x, 2) for x in load],
        "spark_master": os.environ.get("LEDGER_SPARK_MASTER", "local[*]"),
        "shuffle_partitions": os.environ.get("LEDGER_SHUFFLE_PARTITIONS", "4"),
        "driver_memory": os.environ.get("LEDGER_SPARK_DRIVER_MEMORY", "2g"),
    }


@contextlib.contextmanager
def ledger_home(path: Path):
    """A fresh LEDGER_HOME (own lake, own embedded Postgres), stopped and restored after."""
    from inference_ledger.db import stop_embedded
    from inference_ledger.settings import load_settings

    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    before = {k: os.environ.get(k) for k in ("LEDGER_HOME", "LEDGER_DATABASE_URL")}
    os.environ["LEDGER_HOME"] = str(path)
    os.environ.pop("LEDGER_DATABASE_URL", None)
    try:
        yield load_settings()
    finally:
        with contextlib.suppress(Exception):
            stop_embedded(load_settings())
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------------------------------------------------------------- the pipeline, step by step


def run_night(stages: Stages, landing: Path, night: date, *, report_dir: Path | None) -> dict:
    """What `ledger run --start NIGHT --end NIGHT+1` does (as the nightly DAG runs it), step by
    step through the real pipeline functions. The data-quality gates run inside the steps;
    their time is measured around them and reported as `audit (GX)`, apart from the step."""
    from inference_ledger import pipeline, steps
    from inference_ledger.db import connect
    from inference_ledger.spark import get_spark

    spark = get_spark()
    with stages.stage("prepare (migrate, run record)"):
        ctx, url = pipeline.prepare(landing, night, night + timedelta(days=1), "bench", night)
    with stages.stage("ingest (all sources)") as info:
        accounting = pipeline.ingest_step(ctx, url)
        info["rows"] = sum(int(r["rows_read"]) for r in accounting)
    # Split of the ingest step by source, as steps.ingest timed it (ctx.timings).
    by_source: dict[str, int] = {}
    for r in accounting:
        key = r["source"].split(".")[0]
        by_source[key] = by_source.get(key, 0) + int(r["rows_read"])
    for name, seconds in dict(ctx.timings).items():
        if name.startswith("ingest."):
            stages.add(f"  {name}", seconds, by_source.get(name.split(".", 1)[1]))
    with stages.stage("aggregate + reconcile") as info:
        counts = pipeline.aggregate_step(ctx, url)
        info["rows"] = sum(counts.values())
    with stages.stage("publish") as info:
        outcome = pipeline.publish_step(ctx, url)
        info["rows"] = sum(outcome.rows.values())
    # The gates and the staging COPY time themselves on the run's clock (ctx.timings).
    spent = {
        "input_files_gate": ctx.timings.get("gate.input_files_gate", 0.0),
        "lake_gate": ctx.timings.get("gate.lake_gate", 0.0),
        "staging_gate": ctx.timings.get("gate.staging_gate", 0.0),
        "stage": ctx.timings.get("publish.stage", 0.0),
    }
    ingest_gate = spent["input_files_gate"]
    pipeline.finish(ctx, url)
    staged = outcome.rows
    # The gates ran inside the steps: move their seconds to `audit (GX)`.
    audit_s = sum(spent.get(k, 0.0) for k in ("input_files_gate", "lake_gate", "staging_gate"))
    rows = stages.rows
    for step, part in (
        ("ingest (all sources)", ingest_gate),
        ("aggregate + reconcile", spent.get("lake_gate", 0.0)),
        ("publish", spent.get("staging_gate", 0.0) + spent.get("stage", 0.0)),
    ):
        s = rows[step]
        s["seconds"] = round(s["seconds"] - part, 3)
        s["rows_per_s"] = round(s["rows"] / s["seconds"]) if s["rows"] and s["seconds"] else None
    publish_row = rows.pop("publish")
    stages.add("stage COPY", spent.get("stage", 0.0), sum(staged.values()))
    rows["stage COPY"].update({k: v for k, v in publish_row.items() if k.startswith("peak")})
    stages.add("audit (GX)", audit_s, sum(staged.values()))
    rows["audit (GX)"]["gates_s"] = {
        k: round(spent.get(k, 0.0), 3) for k in ("input_files_gate", "lake_gate", "staging_gate")
    }
    rows["audit (GX)"].update({k: v for k, v in publish_row.items() if k.startswith("peak")})
    rows["publish"] = publish_row
    if report_dir is not None:
        from inference_ledger.report import write_reports

        start, end = steps.run_range(spark, ctx)
        conn = connect(url)
        try:
            with stages.stage("report"):
                write_reports(conn, report_dir, steps.quarter_labels(start, end))
        finally:
            conn.close()
    total = lambda k: sum(int(r[k]) for r in accounting)  # noqa: E731
    outcomes = ("rows_read", "rows_loaded", "rows_quarantined", "rows_superseded")
    per_source: dict[str, dict[str, int]] = {}
    for r in accounting:
        acc = per_source.setdefault(r["source"], {"files": 0, "files_skipped": 0})
        acc["files"] += 1
        acc["files_skipped"] += int(bool(r.get("is_skipped")))
        for k in (*outcomes, "rows_deduplicated"):
            acc[k] = acc.get(k, 0) + int(r[k])
    return {
        "by_source": per_source,
        "run_id": ctx.run_id,
        "files": len(accounting),
        "rows_read": total("rows_read"),
        "rows_loaded": total("rows_loaded"),
        "rows_quarantined": total("rows_quarantined"),
        "rows_superseded": total("rows_superseded"),
        "rows_deduplicated": total("rows_deduplicated"),
        "mart_rows": counts,
        "staged_rows": staged,
        "dq_checks": outcome.checks,
        "url": url,
    }


# ---------------------------------------------------------------- references


def duckdb_reference(landing: Path, work: Path, threads: int) -> dict:
    """(a) DuckDB on the same files: usage pages -> one row per result -> dedupe on the natural
    key (newest file wins) -> Parquet -> monthly tokens per channel and model; billing CSV ->
    Parquet -> daily cost per day, service, region, meter. What a user could do by hand."""
    import duckdb

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
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


def bare_copy_reference(url: str, work: Path) -> dict:
    """(b) The staged rows (as they are in `staging` now) exported to CSV, then COPYed back into
    an empty copy of each table: the fastest Postgres can take these rows."""
    from psycopg2 import sql

    from inference_ledger.db import connect
    from inference_ledger.steps import MARTS

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
    (untimed) into the same kind of table."""
    from psycopg2 import sql

    from inference_ledger import contracts, lake
    from inference_ledger.db import connect, copy_parquet

    cols = [c.name for c in contracts.columns("lake", "usage_facts")]
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
                            sql.SQL("{} text").format(sql.Identifier(c)) for c in cols
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


# ---------------------------------------------------------------- scenarios


def bench_size(name: str, work: Path, mem: MemorySampler, report: bool) -> tuple[dict, Stages]:
    from inference_ledger.sample.bulk import write_bulk_landing

    usage_n, billing_n = SIZES[name]
    root = work / name
    landing = root / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    stages = Stages(mem)
    with stages.stage("generate landing (not part of the run)") as info:
        gen = write_bulk_landing(landing, NIGHT, 1, usage_results=usage_n, billing_lines=billing_n)
        info["rows"] = gen.usage_results_written + gen.billing_lines
    run_stages = Stages(mem)
    with ledger_home(root / "home") as settings:
        figures = run_night(
            run_stages, landing, NIGHT, report_dir=settings.reports_dir if report else None
        )
        with run_stages.stage("reference (b): bare COPY of the staged rows") as info:
            copy_ref = bare_copy_reference(figures["url"], root / "copy")
            info["rows"] = copy_ref["rows"]
        with run_stages.stage("reference (b'): staging path vs bare COPY, usage facts") as info:
            bulk_copy = bulk_copy_reference(figures.pop("url"), settings.lake_dir, root / "bulk")
            info["rows"] = bulk_copy["rows"]
    with run_stages.stage("reference (a): DuckDB ingest + dedupe + aggregate") as info:
        duck = duckdb_reference(landing, root / "duckdb", threads=os.cpu_count() or 2)
        info["rows"] = gen.usage_results_written + gen.billing_lines
    s = run_stages
    ingest_usage = s.seconds("  ingest.usage")
    ingest_billing = s.seconds("  ingest.billing")
    aggregate = s.seconds("aggregate + reconcile")
    night = s.seconds(
        "prepare (migrate, run record)",
        "ingest (all sources)",
        "aggregate + reconcile",
        "stage COPY",
        "audit (GX)",
        "publish",
    )
    stage_rate = s.rows["stage COPY"]["rows_per_s"]
    ratios = {
        "ingest_usage_vs_duckdb_usage": _ratio(ingest_usage, duck["usage_seconds"]),
        "ingest_billing_vs_duckdb_billing": _ratio(ingest_billing, duck["billing_seconds"]),
        "ingest_and_aggregate_vs_duckdb": _ratio(
            ingest_usage + ingest_billing + aggregate,
            duck["usage_seconds"] + duck["billing_seconds"],
        ),
        "stage_copy_rate_vs_bare_copy_rate": _ratio(stage_rate, copy_ref["rows_per_s"]),
        "bulk_staging_rate_vs_bare_copy_rate": _ratio(
            bulk_copy["bare_copy_seconds"], bulk_copy["staging_path_seconds"]
        ),
        "audit_share_of_night": _ratio(s.seconds("audit (GX)"), night),
    }
    shutil.rmtree(landing, ignore_errors=True)
    result = {
        "size": name,
        "usage_results": usage_n,
        "billing_lines": billing_n,
        "generated": asdict(gen),
        "landing_mb": round(gen.bytes / MB, 1),
        "generate": stages.rows,
        "stages": s.rows,
        "night_seconds": round(night, 3),
        "run": figures,
        "duckdb": duck,
        "bare_copy": copy_ref,
        "bulk_copy": bulk_copy,
        "ratios": ratios,
    }
    return result, run_stages


def bench_incremental(
    name: str, history_nights: int, work: Path, mem: MemorySampler, first: Stages | None = None
) -> dict:
    """The same night (size `name`) run on an empty lake (`first`, if the size was just
    measured), and run after `history_nights` small nights were ingested and published: the
    second should cost about the first."""
    from inference_ledger.pipeline import run_pipeline
    from inference_ledger.sample.bulk import write_bulk_landing, write_night
    from inference_ledger.sample.sink import Sink

    usage_n, billing_n = SIZES[name]
    root = work / f"incremental-{name}"
    out: dict = {"size": name, "history_nights": history_nights}
    if first is None:  # first night: an empty lake and database
        landing1 = root / "landing-first"
        shutil.rmtree(landing1, ignore_errors=True)
        write_bulk_landing(landing1, NIGHT, 1, usage_results=usage_n, billing_lines=billing_n)
        first = Stages(mem)
        with ledger_home(root / "home-first"):
            run_night(first, landing1, NIGHT, report_dir=None)
        shutil.rmtree(landing1, ignore_errors=True)
    out["first_night"] = first.rows
    # History: `history_nights` small nights before NIGHT, loaded by one run.
    landing = root / "landing-history"
    shutil.rmtree(landing, ignore_errors=True)
    gen = write_bulk_landing(
        landing,
        NIGHT - timedelta(days=history_nights),
        history_nights,
        usage_results=HISTORY_USAGE,
        billing_lines=HISTORY_BILLING,
        files_per_channel=1,
    )
    out["history_generated"] = {k: v for k, v in asdict(gen).items() if k != "nights"}
    nth = Stages(mem)
    with ledger_home(root / "home-history"):
        with nth.stage("history load (one run over all history nights)") as info:
            r = run_pipeline(landing, as_of=NIGHT)
            info["rows"] = r.rows_read
        # The new night: the same files the first-night run read (same seed, same night).
        write_night(Sink(landing), NIGHT, usage_n, billing_n)
        out["next_night_run"] = run_night(nth, landing, NIGHT, report_dir=None)
        out["next_night_run"].pop("url")
    out["next_night"] = nth.rows
    keys = [
        "prepare (migrate, run record)",
        "ingest (all sources)",
        "aggregate + reconcile",
        "stage COPY",
        "audit (GX)",
        "publish",
    ]
    t_first, t_next = first.seconds(*keys), nth.seconds(*keys)
    out["first_night_seconds"] = round(t_first, 3)
    out["next_night_seconds"] = round(t_next, 3)
    out["ratio_next_vs_first"] = _ratio(t_next, t_first)
    out["ratio_by_stage"] = {k: _ratio(nth.seconds(k), first.seconds(k)) for k in keys}
    shutil.rmtree(landing, ignore_errors=True)
    return out


def _save(results: dict, path: Path) -> None:
    """Written after each part, so a long run that is stopped keeps what it measured."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


def _ratio(a, b) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def print_size(r: dict) -> None:
    print(f"\n== {r['size']}: {r['usage_results']:,} usage results, {r['billing_lines']:,} billing lines"
          f" ({r['landing_mb']} MB of landing files)")  # fmt: skip
    print(f"{'stage':<52}{'seconds':>9}{'rows':>12}{'rows/s':>11}{'driver':>8}{'jvm':>7}{'pg':>6}")
    for name, s in {**r["generate"], **r["stages"]}.items():
        print(
            f"{name:<52}{s['seconds']:>9.2f}{s['rows'] or '':>12}{s['rows_per_s'] or '':>11}"
            f"{s['peak_driver_mb']:>8}{s['peak_jvm_mb']:>7}{s['peak_postgres_mb']:>6}"
        )
    print(f"night (prepare..publish): {r['night_seconds']:.2f} s")
    for k, v in r["ratios"].items():
        print(f"  {k}: {v}")


def markdown(results: dict) -> str:
    """The README's figures from a results file (`python bench/run.py --summarize FILE`)."""
    m = results["machine"]
    out = [
        f"Machine: {m['cores']} cores, {m['ram_gb']} GiB, {m['cpu']}; Spark {m['spark_master']}, "
        f"{m['shuffle_partitions']} shuffle partitions, driver {m.get('driver_memory', '2g')}; load average "
        f"{m['load_avg_at_start'][0]} at start, {m.get('load_avg_at_end', ['?'])[0]} at end. "
        f"{results.get('note', '')}",
        "",
        f"Fixed overhead: Spark session start {results['fixed_overhead']['spark_session_start_s']}"
        f" s, `ledger --help` {results['fixed_overhead'].get('cli_start_s', '?')} s.",
    ]
    for r in results["sizes"]:
        out += [
            "",
            f"**{r['size']}**: {r['usage_results']:,} usage results "
            f"({r['generated']['usage_results_written']:,} with redeliveries, "
            f"{r['generated']['usage_files']} files), {r['billing_lines']:,} billing lines; "
            f"{r['landing_mb']} MB of gzip landing files. Night (prepare..publish): "
            f"{r['night_seconds']:.1f} s.",
            "",
            "| stage | s | rows | rows/s | peak driver MB | peak JVM MB | peak Postgres MB |",
            "|---|--:|--:|--:|--:|--:|--:|",
        ]
        for name, st in {**r["generate"], **r["stages"]}.items():
            out.append(
                f"| {name.strip()} | {st['seconds']:.2f} | {st['rows'] or ''} | "
                f"{st['rows_per_s'] or ''} | {st['peak_driver_mb']} | {st['peak_jvm_mb']} | "
                f"{st['peak_postgres_mb']} |"
            )
        out += ["", "| ratio | value |", "|---|--:|"]
        out += [f"| {k} | {v} |" for k, v in r["ratios"].items()]
    inc = results.get("incremental")
    if inc:
        out += [
            "",
            f"**Incremental** ({inc['size']} night, {inc['history_nights']} nights of history): "
            f"first night {inc['first_night_seconds']:.1f} s, one more night "
            f"{inc['next_night_seconds']:.1f} s, ratio **{inc['ratio_next_vs_first']}**.",
            "",
            "| stage | first night s | one more night s | ratio |",
            "|---|--:|--:|--:|",
        ]
        for k, v in inc["ratio_by_stage"].items():
            a = inc["first_night"].get(k, {}).get("seconds")
            b = inc["next_night"].get(k, {}).get("seconds")
            out.append(f"| {k} | {a} | {b} | {v} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="1m,10m", help=f"comma-separated, of {', '.join(SIZES)}")
    p.add_argument("--quick", action="store_true", help="only the tiny size (a smoke test)")
    p.add_argument("--history-nights", type=int, default=365)
    p.add_argument(
        "--incremental-size",
        default=None,
        help="night size of the incremental test (default: smallest)",
    )
    p.add_argument("--no-incremental", action="store_true")
    p.add_argument("--work", type=Path, default=HERE / "work", help="scratch (deleted after)")
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--note", default="", help="free text kept with the results")
    p.add_argument("--summarize", type=Path, help="print a results file as Markdown and exit")
    args = p.parse_args(argv)
    if args.summarize:
        print(markdown(json.loads(args.summarize.read_text())))
        return {}
    sizes = ["quick"] if args.quick else [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        p.error(f"unknown size(s) {unknown}; choose from {list(SIZES)}")
    os.environ.setdefault("LEDGER_SPARK_MASTER", f"local[{os.cpu_count() or 2}]")

    # Room for the 10M night's cached records (they spill to disk beyond it).
    os.environ.setdefault("LEDGER_SPARK_DRIVER_MEMORY", "4g")
    from inference_ledger.spark import get_spark

    suffix = "-quick" if args.quick else ""
    path = args.out / f"{datetime.now(UTC):%Y-%m-%d}{suffix}.json"
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "note": args.note,
        "sizes": [],
    }
    with MemorySampler() as mem:
        t0 = time.perf_counter()
        get_spark()
        spark_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "inference_ledger.cli", "--help"], check=True,
                       capture_output=True)  # fmt: skip
        results["fixed_overhead"] = {
            "spark_session_start_s": round(spark_s, 3),
            "cli_start_s": round(time.perf_counter() - t0, 3),
        }
        measured: dict[str, Stages] = {}
        inc_size = args.incremental_size or sizes[0]
        # The incremental test right after its size: on a busy machine the largest size may
        # not finish, and its figures are the ones most likely to be cut short.
        order = [inc_size] + [s for s in sizes if s != inc_size]
        for name in order:
            if name in sizes:
                r, measured[name] = bench_size(name, args.work, mem, report=True)
                print_size(r)
                results["sizes"].append(r)
                _save(results, path)
            if name == inc_size and not args.no_incremental:
                inc = bench_incremental(
                    inc_size, args.history_nights, args.work, mem, measured.get(inc_size)
                )
                print(
                    f"\n== incremental ({inc_size}, {args.history_nights} nights of history): "
                    f"first night {inc['first_night_seconds']:.2f} s, one more night "
                    f"{inc['next_night_seconds']:.2f} s, ratio {inc['ratio_next_vs_first']}"
                )
                print(f"  by stage: {inc['ratio_by_stage']}")
                results["incremental"] = inc
                _save(results, path)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    _save(results, path)
    print(f"\nresults: {path}")
    shutil.rmtree(args.work, ignore_errors=True)
    results["path"] = str(path)
    return results


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent / "src"))
    main()
