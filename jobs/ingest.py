"""spark-submit jobs/ingest.py --run-id R --landing DIR: landing files -> lake, with accounting.

The first job of a run records it in audit.runs (the later ones find it there)."""

import argparse

from _args import parser, record_master, run
from inference_ledger.ingest.records import InputError
from inference_ledger.pipeline import ingest_step, prepare
from inference_ledger.steps import SOURCES


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
    ctx, url = prepare(
        args.landing, args.start, args.end, "spark-submit", args.as_of, run_id=args.run_id
    )
    ctx.sources = args.sources
    rows = ingest_step(ctx, url)
    print(f"ingested {len(rows)} files, {sum(r['rows_read'] for r in rows)} rows read")
    failed = getattr(ctx, "failed_months", None)
    if args.fail_on_failed_months and failed:
        raise InputError(
            "billing: month(s) not loaded: "
            + "; ".join(f"{m}: {', '.join(v[:3])}" for m, v in sorted(failed.items()))
        )
    return 0


if __name__ == "__main__":
    run(main)
