"""spark-submit jobs/aggregate.py --run-id R --landing DIR: lake -> spend, unit cost,
reconciliation and quarterly summary for the run's quarters."""

from _args import open_run, parser, run
from inference_ledger.steps.aggregate import AggregateStep


def main(argv=None) -> int:
    args = parser(__doc__).parse_args(argv)
    result = AggregateStep().run(open_run(args))
    print(", ".join(f"{k}: {v} rows" for k, v in result.counts.items()))
    return 0


if __name__ == "__main__":
    run(main)
