"""spark-submit jobs/publish.py --run-id R --landing DIR: stage (COPY) -> audit (GX) -> publish.

Publishing starts no Spark session (the run's Parquet through Arrow, Postgres, GX on SQL; the
run's state from the run store): the nightly DAG runs the same step as a Python task
(`orchestration.publish_run`); this entry point is for running the steps by hand. The run is
finished here (succeeded, or failed with the error) unless `--keep-open` says a
later step finishes it: the nightly DAG's `finish` task, after the report."""

from _args import open_run, parser, run
from inference_ledger.steps.publish import PublishStep


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument(
        "--keep-open",
        action="store_true",
        help="leave the run running: a later step of the same run records how it ended",
    )
    args = p.parse_args(argv)
    ledger_run = open_run(args)
    try:
        outcome = PublishStep().run(ledger_run)
    except BaseException as exc:
        if not args.keep_open:
            ledger_run.store.finish(error=f"{type(exc).__name__}: {exc}")
        raise
    if not args.keep_open:
        ledger_run.store.finish()
    print(
        f"published {sum(outcome.rows.values())} rows; {outcome.checks} checks, {outcome.warnings} warnings"
    )
    return 0


if __name__ == "__main__":
    run(main)
