"""spark-submit jobs/publish.py --run-id R --landing DIR: stage (COPY) -> audit (GX) -> publish.

The run is finished here (succeeded, or failed with the error) unless `--keep-open` says a
later step finishes it: the nightly DAG's `finish` task, after the report."""

from _args import context, parser, run
from inference_ledger.db import database_url
from inference_ledger.pipeline import finish, publish_step


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument(
        "--keep-open",
        action="store_true",
        help="leave the run running: a later step of the same run records how it ended",
    )
    args = p.parse_args(argv)
    ctx, url = context(args), database_url()
    try:
        outcome = publish_step(ctx, url)
    except BaseException as exc:
        if not args.keep_open:
            finish(ctx, url, error=f"{type(exc).__name__}: {exc}")
        raise
    if not args.keep_open:
        finish(ctx, url)
    print(
        f"published {sum(outcome.rows.values())} rows; {outcome.checks} checks, {outcome.warnings} warnings"
    )
    return 0


if __name__ == "__main__":
    run(main)
