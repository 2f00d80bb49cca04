"""Azure Cost Management EA actual-cost exports (month-to-date runs + manifest.json).

For each billing month the newest run is the truth: its inference lines per quarter add up to
the scenario's inference spend exactly. Earlier runs of the month restate fewer days with
slightly different numbers, so adding runs up gives a wrong (larger) answer.

The parts: the resources and their true lines (billing_fleet.py), a line as a row in each
dialect (billing_rows.py), one run's blobs and manifest on disk (billing_export.py).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from inference_ledger.periods import Quarter
from inference_ledger.sample.billing_export import LAYOUTS, MANIFEST_SHAPES, Run, write_run
from inference_ledger.sample.billing_fleet import Line, build_fleet, quarter_lines
from inference_ledger.sample.billing_rows import DIALECTS
from inference_ledger.sample.sink import Sink, rng_for, uuid_from

CENT = Decimal("0.01")


@dataclass
class BillingStats:
    runs: int = 0
    rows: int = 0
    rows_effective: int = 0
    superseded_runs: int = 0
    untagged_inference_lines: int = 0
    quarantinable_rows: int = 0
    rejected_runs: int = 0
    rejected_rows: int = 0
    spend: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # quarter -> workload


def _perturbed(line: Line, delta: Decimal) -> Line:
    return replace(line, cost=(line.cost * (1 + delta)).quantize(CENT))


def month_runs(truth: list[Line], first: date, last: date, month_index: int, seed: int):
    """Runs of one billing month, oldest first; the last one carries the true lines.

    Two month-to-date runs (provisional), then the close-of-month run on the 5th: Cost
    Management re-runs last month's export during the first five days, and a run more than
    72 hours after the month's end is final (config/billing_exports.yaml)."""
    rng = rng_for(seed, "billing", "runs", f"{first:%Y-%m}")
    next_month = last + timedelta(days=1)

    def stamp(d: date) -> str:
        # Derived from the run date, never the wall clock: reruns give identical manifests.
        hh, mm, ss = rng.randint(2, 6), rng.randint(0, 59), rng.randint(0, 59)
        return f"{d:%Y-%m-%d}T{hh:02d}:{mm:02d}:{ss:02d}Z"

    def partial(through: date) -> list[Line]:
        out = []
        for ln in truth:
            if ln.day > through or rng.random() < 0.03:  # late-arriving rows are missing
                continue
            if ln.day == through:  # the newest day is still incomplete
                out.append(_perturbed(ln, -Decimal(rng.randint(10, 35)) / 100))
            else:  # earlier days restated with small corrections
                out.append(_perturbed(ln, Decimal(rng.randint(-500, 500)) / 100_000))
        return out

    runs = [
        Run(stamp(first.replace(day=10)), "Scheduled", "MonthToDate", first.replace(day=9),
            partial(first.replace(day=9))),
        Run(stamp(first.replace(day=20)), "Scheduled", "MonthToDate", first.replace(day=19),
            partial(first.replace(day=19))),
    ]  # fmt: skip
    if month_index % 7 == 3:
        # A manual re-run after close restates a few lines of the scheduled final run.
        early = [
            _perturbed(ln, Decimal(rng.choice([-1, 1]) * rng.randint(100, 500)) / 100_000)
            if rng.random() < 0.3
            else ln
            for ln in truth
        ]
        runs.append(Run(stamp(next_month.replace(day=5)), "Scheduled", "TheLastBillingMonth",
                        last, early))  # fmt: skip
        runs.append(Run(stamp(next_month.replace(day=6)), "Manual", "TheLastBillingMonth",
                        last, truth))  # fmt: skip
    else:
        runs.append(Run(stamp(next_month.replace(day=5)), "Scheduled", "TheLastBillingMonth",
                        last, truth))  # fmt: skip
    return runs, rng


def write_billing(
    sink: Sink,
    quarters: list[Quarter],
    seed: int,
    scale: float,
    dialect: str = "ea",
    faults: bool = False,
    parquet: bool = False,
    layout: str = "cost-management",
    manifest_shape: str = "2024-04-01",
    ai_tokens: bool = False,
) -> BillingStats:
    """With `faults`, some months get a final run with unparseable extra rows (quarantined)
    and a later re-run whose manifest overstates its rows (rejected: the final run stays).
    `layout` and `manifest_shape`: see write_run (LAYOUTS, MANIFEST_SHAPES)."""
    if dialect not in DIALECTS:
        raise ValueError(f"billing dialect must be one of {DIALECTS}, got {dialect!r}")
    if layout not in LAYOUTS or manifest_shape not in MANIFEST_SHAPES:
        raise ValueError(
            f"billing layout must be one of {LAYOUTS} and manifest shape one of "
            f"{MANIFEST_SHAPES}, got {layout!r}, {manifest_shape!r}"
        )
    shape = {"layout": layout, "manifest_shape": manifest_shape}
    fleet = build_fleet(seed, scale, ai_tokens)  # ai_tokens: Azure OpenAI token meters too
    stats = BillingStats()
    month_index = 0
    for q in quarters:
        lines = quarter_lines(q, fleet, seed)
        stats.spend[q.label] = {}
        for ln in lines:
            by_wl = stats.spend[q.label]
            by_wl[ln.resource.workload] = by_wl.get(ln.resource.workload, Decimal(0)) + ln.cost
        for m in range(3):
            first = date(q.year, q.start.month + m, 1)
            last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
            truth = [ln for ln in lines if first <= ln.day <= last]
            _write_month(
                sink, stats, truth, first, last, month_index, seed, dialect, faults, parquet, shape
            )
            month_index += 1
    return stats


def _write_month(
    sink: Sink,
    stats: BillingStats,
    truth: list[Line],
    first: date,
    last: date,
    month_index: int,
    seed: int,
    dialect: str,
    faults: bool,
    parquet: bool,
    shape: dict,
) -> None:
    """The export runs of one billing month (month_runs) in `dialect`, laid out in `shape`
    (layout, manifest_shape), counted into `stats`."""
    runs, rng = month_runs(truth, first, last, month_index, seed)
    for run_index, run in enumerate(runs):
        gz = (month_index + run_index) % 3 == 1
        final = run_index == len(runs) - 1
        bad = 2 if faults and final and month_index % 4 == 1 else 0
        n = write_run(
            sink,
            run,
            uuid_from(rng),
            first,
            last,
            gz,
            dialect,
            bad_rows=bad,
            parquet=parquet,
            **shape,
        )
        stats.runs += 1
        stats.rows += n
        stats.quarantinable_rows += bad
    stats.superseded_runs += len(runs) - 1
    if faults and month_index % 5 == 2:
        late = replace(runs[-1], submitted=f"{last + timedelta(days=9):%Y-%m-%d}T05:00:00Z",
                       execution_type="Manual")  # fmt: skip
        n = write_run(sink, late, uuid_from(rng), first, last, False, dialect,
                      overstate_rows=1, **shape)  # fmt: skip
        stats.runs += 1
        stats.rows += n
        stats.rejected_runs += 1
        stats.rejected_rows += n
    stats.rows_effective += len(truth)
    stats.untagged_inference_lines += sum(
        1 for ln in truth if ln.resource.workload == "inference" and not ln.resource.tags
    )
