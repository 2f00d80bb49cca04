"""spark-submit jobs/ingest.py --run-id R --landing DIR: landing files -> lake, with accounting.

The run is recorded in audit.runs once, by whichever driver opens it first (the DAG's `prepare`
task, or this job when it runs on its own); the ingest holds the ledger's lake lock."""

import argparse

from _args import open_run, parser, record_master, run
from inference_ledger.run.context import SOURCES
from inference_ledger.run.store import RunStore
from inference_ledger.steps.ingest import IngestStep


def _sources(value: str) -> tuple[str, ...]:
    chosen = tuple(s.strip() for s in value.split(",") if s.strip())
    unknown = sorted(set(chosen) - set(SOURCES))
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(f"{value!r}: expected some of {','.join(SOURCES)}")
    return chosen


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument(
        "--fail-on-failed-months",
        action="store_true",
        help="exit 2 (after loading the other months) if billing months could not be loaded,"
        " e.g. for a missing FX rate. For schedulers whose publish step is another run"
        " (the Airflow ingest DAGs); without it, this run's publish step fails instead.",
    )
    p.add_argument(
        "--sources",
        type=_sources,
        default=SOURCES,
        help=f"comma-separated subset of {','.join(SOURCES)} to ingest (default all); the"
        " per-source ingest DAGs read only their own part of the landing folder",
    )
    args = p.parse_args(argv)
    record_master()
    ledger_run = open_run(args)
    ctx = ledger_run.ctx
    ctx.sources = args.sources
    rows = IngestStep().run(ledger_run)
    print(f"ingested {len(rows)} files, {sum(r['rows_read'] for r in rows)} rows read")
    failed = ledger_run.store.failed_months() if args.fail_on_failed_months else []
    if failed:
        raise RunStore.failed_months_error(failed)
    return 0


if __name__ == "__main__":
    run(main)
