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
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The benchmark's other modules sit next to this file (measure.py: memory, stages, machine;
# night.py: the night's steps; references.py: DuckDB, bare COPY; summary.py: the tables):
# importable when it runs as a script (`python bench/run.py` puts bench/ first on sys.path)
# and when it is loaded from its path (tests/test_bench.py).
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from measure import MB, MemorySampler, Stages, ledger_home, machine  # noqa: E402
from night import run_night  # noqa: E402
from references import bare_copy_reference, bulk_copy_reference, duckdb_reference  # noqa: E402
from summary import markdown, print_incremental, print_size  # noqa: E402

# (usage results, billing lines) per night.
SIZES = {
    "quick": (20_000, 2_000),
    "100k": (100_000, 10_000),
    "1m": (1_000_000, 100_000),
    "10m": (10_000_000, 1_000_000),
    "50m": (50_000_000, 5_000_000),
}
# The generator holds one usage file's pages in memory: past 10M results a night is split into
# more files (at most 2.5M results a file, as at 10M), not into bigger ones.
RESULTS_PER_FILE = 2_500_000
NIGHT = date(2025, 9, 15)  # inside the scenario's finance quarters (2024-Q1..2025-Q3)
# History nights are small: the point is that their size does not matter to one more night.
HISTORY_USAGE, HISTORY_BILLING = 2_000, 1_000


# ---------------------------------------------------------------- scenarios


def _generate(landing: Path, usage_n: int, billing_n: int):
    from inference_ledger.sample.bulk import write_bulk_landing

    files = max(4, math.ceil(usage_n / RESULTS_PER_FILE))
    return write_bulk_landing(
        landing, NIGHT, 1, usage_results=usage_n, billing_lines=billing_n, files_per_channel=files
    )


def bench_size(name: str, work: Path, mem: MemorySampler, report: bool) -> tuple[dict, Stages]:
    usage_n, billing_n = SIZES[name]
    root = work / name
    landing = root / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    stages = Stages(mem)
    with stages.stage("generate landing (not part of the run)") as info:
        gen = _generate(landing, usage_n, billing_n)
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


def main(argv: list[str] | None = None) -> dict:
    p = _parser()
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
    suffix = "-quick" if args.quick else ""
    path = args.out / f"{datetime.now(UTC):%Y-%m-%d}{suffix}.json"
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "note": args.note,
        "sizes": [],
    }
    with MemorySampler() as mem:
        results["fixed_overhead"] = _fixed_overhead()
        _measure(args, sizes, mem, results, path)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    _save(results, path)
    print(f"\nresults: {path}")
    shutil.rmtree(args.work, ignore_errors=True)
    results["path"] = str(path)
    return results


def _parser() -> argparse.ArgumentParser:
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
    return p


def _fixed_overhead() -> dict:
    """Seconds to start the Spark session and `ledger --help`, paid once per process."""
    from inference_ledger.spark import get_spark

    t0 = time.perf_counter()
    get_spark()
    spark_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "inference_ledger.cli", "--help"], check=True,
                   capture_output=True)  # fmt: skip
    return {
        "spark_session_start_s": round(spark_s, 3),
        "cli_start_s": round(time.perf_counter() - t0, 3),
    }


def _measure(
    args: argparse.Namespace, sizes: list[str], mem: MemorySampler, results: dict, path: Path
) -> None:
    """Each size, and the incremental test right after its size, into `results` (saved at
    `path` after each part)."""
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
            print_incremental(inc, inc_size, args.history_nights)
            results["incremental"] = inc
            _save(results, path)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent / "src"))
    main()
