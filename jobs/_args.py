"""Arguments every job shares (run id, landing folder, period) and its exit codes. Parsing only.

Everything a job needs comes from its arguments and its environment (`LEDGER_HOME`,
`LEDGER_LAKE_URI`, `LEDGER_DATABASE_URL`, ...), never from the submitting process' state, so the
same command runs under `local[*]`, on a standalone cluster or from an Airflow worker.

Exit codes match the `ledger` CLI, so a caller can tell data errors from transient ones:
0 ok; 2 bad input (`InputError`); 3 the data-quality gate failed (`QualityGateFailed`);
anything else (1, or a signal) may succeed when retried.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

EXIT_INPUT_ERROR = 2
EXIT_QUALITY_GATE = 3


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--run-id", required=True, help="the run this step belongs to (audit.runs)")
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--start", type=date.fromisoformat, default=None)
    p.add_argument("--end", type=date.fromisoformat, default=None)
    p.add_argument("--as-of", type=date.fromisoformat, default=None)
    return p


def open_run(args):
    """The job's run (run/runner.py `Run`), recorded as running unless a driver already did
    (the DAG's `prepare` task); a run already finished is refused."""
    from inference_ledger.pipeline import prepare

    return prepare(
        args.landing, args.start, args.end, "spark-submit", args.as_of, run_id=args.run_id
    )


def record_master() -> None:
    """Start the job's Spark session; what audit.runs records as the run's master is the one
    it got (spark-submit --master), unless LEDGER_SPARK_MASTER says otherwise."""
    import os

    from inference_ledger.spark import get_spark

    os.environ.setdefault("LEDGER_SPARK_MASTER", get_spark().sparkContext.master)


def run(main: Callable[[], int]) -> None:
    """Run a job's `main` and exit with the code its outcome maps to (see the module doc)."""
    from inference_ledger.ingest.records import InputError
    from inference_ledger.quality import QualityGateFailed

    try:
        code = main()
    except InputError as exc:
        print(f"ledger job: input error: {exc}", file=sys.stderr)
        code = EXIT_INPUT_ERROR
    except QualityGateFailed as exc:
        print(f"ledger job: {exc}", file=sys.stderr)
        code = EXIT_QUALITY_GATE
    finally:
        from inference_ledger.spark import stop_spark

        stop_spark()
    sys.exit(code)
