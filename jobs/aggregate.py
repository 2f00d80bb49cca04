"""spark-submit jobs/aggregate.py --run-id R --landing DIR: lake -> spend, unit cost,
reconciliation and quarterly summary for the run's quarters."""

from _args import context, parser, run
from inference_ledger.db import database_url
from inference_ledger.pipeline import aggregate_step


def main(argv=None) -> int:
    args = parser(__doc__).parse_args(argv)
    counts = aggregate_step(context(args), database_url())
    print(", ".join(f"{k}: {v} rows" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    run(main)
