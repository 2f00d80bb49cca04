"""Time the finance feeds of an ingest (issue 16): the demo landing's six feeds read into the
lake with a Spark session already up. Prints the median of 5 warm runs and the rows read.

    PYTHONPATH=src .venv/bin/python bench/finance_feeds.py [--runs 5] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-finance-"))
    os.environ["LEDGER_HOME"] = str(work / "home")
    try:
        run(work / "landing", args.runs)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def run(landing: Path, runs: int) -> None:
    from inference_ledger.run.context import SOURCE_FEEDS, RunContext
    from inference_ledger.sample import generate_landing
    from inference_ledger.spark import get_spark, stop_spark
    from inference_ledger.steps.ingest_finance import ingest_finance

    # The landing `ledger demo` makes (cli/commands.py cmd_demo), every input fault on.
    generate_landing(
        landing,
        billing_faults=True,
        usage_conflicts=True,
        statement_chains=True,
        contract_changes=True,
        commitments=True,
    )
    spark = get_spark("bench-finance")
    feeds = frozenset(SOURCE_FEEDS["finance"])
    times, rows = [], 0
    try:
        for i in range(runs + 1):  # the first run warms the session up and is not counted
            ctx = RunContext(run_id=f"bench-{i}", landing=landing)
            t0 = time.perf_counter()
            _, accounting = ingest_finance(spark, ctx, feeds, False)
            elapsed = time.perf_counter() - t0
            rows = sum(int(r["rows_read"]) for r in accounting)
            print(f"run {i}{' (warm-up)' if i == 0 else ''}: {elapsed:.3f} s, {rows} rows read")
            if i:
                times.append(elapsed)
    finally:
        stop_spark()
    print(
        f"finance feeds: median {statistics.median(times):.3f} s over {runs} warm runs, "
        f"{rows} rows read, {len(accounting)} files"
    )


if __name__ == "__main__":
    main()
