"""spark-submit jobs/ingest.py --run-id R --landing DIR: landing files -> lake, with accounting.

The first job of a run records it in audit.runs (the later ones find it there)."""

from _args import parser, record_master, run
from inference_ledger.pipeline import ingest_step, prepare


def main(argv=None) -> int:
    args = parser(__doc__).parse_args(argv)
    record_master()
    ctx, url = prepare(
        args.landing, args.start, args.end, "spark-submit", args.as_of, run_id=args.run_id
    )
    rows = ingest_step(ctx, url)
    print(f"ingested {len(rows)} files, {sum(r['rows_read'] for r in rows)} rows read")
    return 0


if __name__ == "__main__":
    run(main)
