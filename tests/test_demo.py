"""`ledger demo` as a new user runs it: a fresh LEDGER_HOME, its own embedded Postgres.

At `--scale 0.1`: the generator's money totals (every figure the demo prints) depend on
neither seed nor scale, only its row counts do; the counts asserted here come from the
generator's ground truth at the same scale, and the few literal ones (faulty rows and rejected
runs, statements, contract terms) are the same at every scale. A tenth of the rows (1,500
files instead of 2,000) took 117 s against 144 s at the default scale, back to back."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tmpdirs import private_tmp_dir

SCALE = 0.1


@pytest.fixture
def home():
    """A new user's LEDGER_HOME, outside pytest's basetemp: the demo's own embedded Postgres
    runs there, and a concurrent pytest session may re-secure (0700) or rotate the basetemp."""
    root = private_tmp_dir("ledger-demo-")
    yield root / "home"
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_demo_prints_the_public_figures(home, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_HOME=str(home), LEDGER_SPARK_MASTER="local[2]")
    ledger = Path(sys.executable).with_name("ledger")
    try:
        proc = subprocess.run(
            [str(ledger), "demo", "--as-of", "2026-11-27", "--scale", str(SCALE)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from inference_ledger.db import stop_embedded; stop_embedded()",
            ],
            env=env,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    expected = {
        "2024-Q1": ("FY24-Q3", "546.8", "77.3", "386.5"),
        "2024-Q2": ("FY24-Q4", "748.3", "109.5", "547.5"),
        "2024-Q3": ("FY25-Q1", "1,005.0", "139.2", "696.0"),
        "2024-Q4": ("FY25-Q2", "1,467.0", "167.8", "839.0"),
        "2024": ("", "3,767.1", "493.8", "2,469.0"),
        "2025-H1": ("", "5,020.0", "454.7", "2,273.5"),
        "2025-Q3": ("FY26-Q1", "3,650.0", "411.1", "2,055.5"),
    }
    # The demo's inputs carry every deliberate fault the generator has; its own ground truth
    # gives the figures and counts the output must show.
    from inference_ledger.report.render import millions
    from inference_ledger.sample import SCENARIO_QUARTERS, generate_landing

    sample = generate_landing(
        tmp_path / "expected",
        scale=SCALE,
        billing_faults=True,
        usage_conflicts=True,
        statement_chains=True,
        contract_changes=True,
        commitments=True,
    )
    received = dict(sample.revshare_received_usd)
    # The receivable rate drops to 15% on 2024-11-15 (a reported basis takes the rate in
    # effect at the period start, so from 2025-Q1): the amounts received from then on.
    assert {q: str(received[q]) for q in ("2025-Q1", "2025-Q2", "2025-Q3")} == {
        "2025-Q1": "18239073.06",
        "2025-Q2": "23404169.04",
        "2025-Q3": "29905809.48",
    }
    paid = {q: t.revshare_paid_usd for q, t in SCENARIO_QUARTERS.items()}
    for label, quarters in (("2024", ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]),
                            ("2025-H1", ["2025-Q1", "2025-Q2"])):  # fmt: skip
        received[label] = sum(received[q] for q in quarters)
        paid[label] = sum(paid[q] for q in quarters)
    for label, (fiscal, spend, paid_m, implied) in expected.items():
        got = millions(received[label])
        net = millions(received[label] - paid[label])
        pattern = (
            rf"^{re.escape(label)}\s+{re.escape(fiscal)}\s*{re.escape(spend)}\s+{re.escape(paid_m)}"
            rf"\s+{re.escape(implied)}\s+{re.escape(got)}\s+{re.escape(net)}$"
        )
        assert re.search(pattern, out, re.M), f"{label} row missing or wrong in:\n{out}"
    # The billing exports carry unparseable rows (quarantined) and re-runs whose manifest
    # overstates their rows (rejected: their rows are quarantined too).
    faults = sample.quarantinable_billing_rows + sample.rejected_export_rows
    assert sample.rejected_export_runs == 4 and sample.quarantinable_billing_rows == 10
    assert re.search(rf"\b{faults} quarantined\b", out), out

    # Inputs handled, per source: (read, loaded, deduplicated, superseded, quarantined).
    def handled(source):
        m = re.search(
            rf"^  {re.escape(source)}\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", out, re.M
        )
        assert m, f"{source} missing from:\n{out}"
        return tuple(int(x) for x in m.groups())

    conflicting = sample.conflicting_usage_results
    assert conflicting > 0 and sample.chained_supersessions == 1
    assert handled("usage") == (
        sample.usage_results_written,
        sample.usage_results,
        sample.usage_results_written - sample.usage_results - conflicting,
        conflicting,
        0,
    )
    assert handled("finance.settlements") == (
        sample.settlement_rows, 14, 0, sample.superseding_statements, 0
    )  # fmt: skip
    assert handled("finance.revenue") == (
        sample.revenue_rows,
        sample.revenue_rows - sample.superseded_revenue_versions,
        0,
        sample.superseded_revenue_versions,
        0,
    )
    assert handled("finance.contracts") == (3, 3, 0, 0, 0)
    assert handled("finance.commitments") == (1, 1, 0, 0, 0)
    # One line per commitment and per capped agreement, from the generator's ground truth.
    for line in expected_outlook_lines(sample):
        assert line in out.splitlines(), f"{line!r} missing from:\n{out}"
    assert handled("billing.azure")[4] == faults
    for line in (
        "  payable    OAI-MSFT-REVSHARE   rate 0.2 from 2023-01-01 to 2031-01-01 (exclusive)",
        "  receivable MSFT-OAI-RESALE     rate 0.2 from 2023-01-01 to 2024-11-15 (exclusive)",
        "  receivable MSFT-OAI-RESALE     rate 0.15 from 2024-11-15 to 2026-04-27 (exclusive)",
        "  payable OAI-MSFT-REVSHARE rate applied: 0.2 in 2024-Q1..2025-Q3",
        "  receivable MSFT-OAI-RESALE rate applied: 0.2 in 2024-Q1..2024-Q4, 0.15 in 2025-Q1..2025-Q3",
    ):
        assert line in out.splitlines(), f"{line!r} missing from:\n{out}"
    assert (home / "reports" / "index.html").is_file()
    for quarter in ("2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1", "2025-Q2", "2025-Q3"):
        assert (home / "reports" / quarter / "index.html").is_file(), quarter
    # The 2024 page shows the public-figures table: the quarters and the year.
    year = (home / "reports" / "2024" / "index.html").read_text()
    for figure in (
        "$546.8M",
        "$748.3M",
        "$1,005.0M",
        "$1,467.0M",
        "$3,767.1M",
        "$493.8M",
        "$2,469.0M",
    ):
        assert f">{figure}</td>" in year, figure


def _q10(x):
    from decimal import ROUND_HALF_UP, Decimal

    return x.quantize(Decimal("1e-10"), ROUND_HALF_UP)


def _commitment_line(sample) -> str:
    """config/commitments.yaml on the scenario: every Azure charge burns the commitment, so
    the consumption is the quarters' inference + training + other spend; the last quarter's
    three months are the trailing run-rate window."""
    from datetime import date
    from decimal import Decimal

    from inference_ledger.report.render import dollars_m, pct
    from inference_ledger.sample import SCENARIO_QUARTERS

    cid, party, amount, _, start, end, *_ = sample.commitments[0]
    billed = [
        t.inference_spend_usd + t.training_spend_usd + t.other_spend_usd
        for q, t in SCENARIO_QUARTERS.items()
        if q in sample.quarters
    ]
    consumed, amount = sum(billed), Decimal(amount)
    last_end, start, end = date(2025, 10, 1), date.fromisoformat(start), date.fromisoformat(end)
    assert sample.quarters[-1] == "2025-Q3" and start < date(2025, 7, 1)
    daily = _q10(billed[-1] / 92)  # July..September
    variance = consumed + _q10(daily * (end - last_end).days) - amount
    elapsed = _q10(Decimal((last_end - start).days) / (end - start).days)
    status = "shortfall" if variance < 0 else "surplus"
    return (
        f"commitment {cid} ({party}): {dollars_m(consumed)} of {dollars_m(amount)} consumed by"
        f" 2025-09 ({pct(_q10(consumed / amount))} of the commitment, {pct(elapsed)} of the"
        f" term); PROJECTION at the trailing run-rate: {status} of {dollars_m(abs(variance))}"
        f" at the term end {end}"
    )


def _quarter_after(label: str, k: int) -> str:
    year, q = int(label[:4]), int(label[-1]) - 1 + k
    return f"{year + q // 4}-Q{q % 4 + 1}"


def _cap_line(sample) -> str:
    """config/outlook.yaml on the scenario: the payable share expected each quarter is what
    was paid (every payable statement matched); growth = mean of the trailing four quarters'
    three quarter-over-quarter ratios, compounded quarterly until the cap is filled, searched
    no further than the agreement's last term (2031-01-01: 21 quarters after 2025-Q3)."""
    from decimal import Decimal

    from inference_ledger.report.render import dollars_m
    from inference_ledger.sample import SCENARIO_QUARTERS

    agreement, direction, *_, cap = next(t for t in sample.contract_terms if t[7])[:8]
    paid = [SCENARIO_QUARTERS[q].revshare_paid_usd for q in sample.quarters]
    ratios = [_q10(b / a) for a, b in zip(paid[-4:-1], paid[-3:], strict=True)]
    mean, room = _q10(sum(ratios) / 3), Decimal(cap) - sum(paid)

    def reached(growth):
        amount, total = paid[-1], Decimal(0)
        for k in range(1, 22):
            amount = _q10(amount * growth)
            total += amount
            if total >= room:
                return _quarter_after("2025-Q3", k)
        return None

    return (
        f"cap {agreement} ({direction}): {dollars_m(sum(paid))} of {dollars_m(Decimal(cap))} used"
        f" by 2025-Q3; PROJECTION at {mean:.4f}x a quarter (trailing four quarters' mean"
        f" growth): reached in {reached(mean)} (band {reached(max(ratios))} .."
        f" {reached(min(ratios)) or 'beyond the horizon'})"
    )


def expected_outlook_lines(sample) -> list[str]:
    return [_commitment_line(sample), _cap_line(sample)]
