"""`ledger demo` as a new user runs it: a fresh LEDGER_HOME, its own embedded Postgres."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_prints_the_public_figures(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_HOME=str(home), LEDGER_SPARK_MASTER="local[2]")
    ledger = Path(sys.executable).with_name("ledger")
    try:
        proc = subprocess.run(
            [str(ledger), "demo", "--as-of", "2026-11-27"],
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
    for label, (fiscal, spend, paid, implied) in expected.items():
        pattern = rf"^{re.escape(label)}\s+{re.escape(fiscal)}\s*{re.escape(spend)}\s+{re.escape(paid)}\s+{re.escape(implied)}\s"
        assert re.search(pattern, out, re.M), f"{label} row missing or wrong in:\n{out}"
    # The demo's billing exports carry deliberate faults: unparseable rows (quarantined) and
    # re-runs whose manifest overstates their rows (rejected: their rows are quarantined too).
    from inference_ledger.sample import generate_landing

    sample = generate_landing(tmp_path / "expected", billing_faults=True)
    faults = sample.quarantinable_billing_rows + sample.rejected_export_rows
    assert sample.rejected_export_runs == 4 and sample.quarantinable_billing_rows == 10
    assert re.search(rf"\b{faults} quarantined\b", out), out
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
