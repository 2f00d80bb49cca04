"""Time the billing part of the ingest alone (`steps.ingest_billing.ingest_billing`) on one
generated Azure EA month-to-date export, next to DuckDB reading the same CSVs.

    python bench/billing_ingest.py --data /tmp/billing-1m --lines 1000000          # Spark
    python bench/billing_ingest.py --data /tmp/billing-1m --lines 1000000 --duckdb # reference

The landing is generated once (`inference_ledger.sample.bulk`) and reused. The Spark figure is
taken in a warm JVM (a small export is ingested first); run it with PYTHONPATH pointing at the
code version to measure. `--rejected-month N` adds the previous month (N lines) and a re-run of
it that its manifest check rejects (the files whose verdicts that changes are checked again).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

NIGHT = date(2025, 9, 15)


def generate(landing: Path, lines: int) -> None:
    from inference_ledger.sample.bulk import BulkSummary, write_billing_month_to_date
    from inference_ledger.sample.sink import Sink

    if (landing / "billing").is_dir():
        return
    write_billing_month_to_date(Sink(landing), NIGHT, lines, 7, BulkSummary())


def add_rejected_rerun(landing: Path, lines: int) -> None:
    """The month before NIGHT's as a final run of `lines` lines, and a later re-run of it whose
    manifest says a row more than its last blob holds: the re-run is rejected, so that month's
    final run is current again (its lines' verdicts change; the night's month's do not)."""
    import json
    import shutil

    from inference_ledger.sample.bulk import BulkSummary, write_billing_month_to_date
    from inference_ledger.sample.sink import Sink

    month = NIGHT.replace(day=1) - timedelta(days=1)
    if any(landing.glob(f"billing/azure/*/{month:%Y%m}01-*")):
        return
    write_billing_month_to_date(Sink(landing), month, lines, 8, BulkSummary())
    [final] = landing.glob(f"billing/azure/*/{month:%Y%m}01-*/*")
    rerun = final.with_name("rerun-" + final.name)
    shutil.copytree(final, rerun)
    manifest = json.loads((rerun / "manifest.json").read_text())
    manifest["runInfo"]["runId"] = rerun.name
    manifest["runInfo"]["submittedTime"] = f"{month + timedelta(days=2):%Y-%m-%d}T03:00:00Z"
    for blob in manifest["blobs"]:
        blob["blobName"] = blob["blobName"].replace(final.name, rerun.name)
    manifest["blobs"][-1]["dataRowCount"] += 1
    manifest["dataRowCount"] += 1  # consistent in itself: only the rows read disagree
    (rerun / "manifest.json").write_text(json.dumps(manifest, indent=2))


def spark_billing(landing: Path, home: Path) -> dict:
    os.environ["LEDGER_HOME"] = str(home)
    os.environ.setdefault("LEDGER_SPARK_DRIVER_MEMORY", "4g")  # as bench/run.py
    from inference_ledger import contracts
    from inference_ledger.ingest import exports
    from inference_ledger.run.context import RunContext, new_run_id
    from inference_ledger.spark import get_spark
    from inference_ledger.steps.ingest_billing import ingest_billing
    from inference_ledger.workload import WorkloadRules

    spark = get_spark()
    fx = spark.createDataFrame([], contracts.spark_schema("lake", "fx_rates"))
    rules = WorkloadRules.load()
    ctx = RunContext(new_run_id(), landing)
    runs = exports.discover_runs(landing)
    t0 = time.perf_counter()
    accounting = ingest_billing(spark, ctx, runs, fx, rules)
    seconds = time.perf_counter() - t0
    return {
        "seconds": round(seconds, 3),
        "rows_read": sum(int(r["rows_read"]) for r in accounting),
        "rows_loaded": sum(int(r["rows_loaded"]) for r in accounting),
        "rows_quarantined": sum(int(r["rows_quarantined"]) for r in accounting),
        "rows_superseded": sum(int(r["rows_superseded"]) for r in accounting),
        "control_totals": len(ctx.billing_control_totals),
    }


def duckdb_billing(landing: Path) -> dict:
    import duckdb

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from references import _duckdb_billing

    with tempfile.TemporaryDirectory() as work:
        con = duckdb.connect()
        groups, seconds = _duckdb_billing(con, landing, Path(work))
    return {"seconds": round(seconds, 3), "groups": int(groups[0])}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True, help="landing folder (generated once)")
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--duckdb", action="store_true", help="time the DuckDB reference instead")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument(
        "--rejected-month",
        type=int,
        default=0,
        help="add the previous month (this many lines) and a rejected re-run of it",
    )
    args = p.parse_args()
    suffix = f"-rejected-{args.rejected_month}" if args.rejected_month else ""
    landing = args.data / f"landing-{args.lines}{suffix}"
    generate(landing, args.lines)
    if args.rejected_month:
        add_rejected_rerun(landing, args.rejected_month)
    out: dict = {"lines": args.lines, "load": os.getloadavg(), "cpus": os.cpu_count()}
    if args.duckdb:
        out["duckdb"] = [duckdb_billing(landing) for _ in range(args.repeat)]
    else:
        import inference_ledger

        out["code"] = inference_ledger.__file__
        warm = args.data / "landing-20000"
        generate(warm, 20_000)
        with tempfile.TemporaryDirectory() as home:
            out["warmup"] = spark_billing(warm, Path(home) / "warm")
            out["spark"] = [
                spark_billing(landing, Path(home) / f"h{i}") for i in range(args.repeat)
            ]
    out["load_after"] = os.getloadavg()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
