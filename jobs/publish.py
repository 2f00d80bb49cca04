"""spark-submit jobs/publish.py --run-id R --landing DIR: stage (COPY) -> audit (GX) -> publish."""

from _args import context, parser, run
from inference_ledger.db import database_url
from inference_ledger.pipeline import finish, publish_step


def main(argv=None) -> int:
    args = parser(__doc__).parse_args(argv)
    ctx, url = context(args), database_url()
    try:
        outcome = publish_step(ctx, url)
    except BaseException as exc:
        finish(ctx, url, error=f"{type(exc).__name__}: {exc}")
        raise
    finish(ctx, url)
    print(
        f"published {sum(outcome.rows.values())} rows; {outcome.checks} checks, {outcome.warnings} warnings"
    )
    return 0


if __name__ == "__main__":
    run(main)
