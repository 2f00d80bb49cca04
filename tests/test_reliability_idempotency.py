"""Idempotency: the same range run three times, and the same nights delivered and run in
reverse order, give byte-identical marts (DESIGN.md "Each step is idempotent")."""

from __future__ import annotations

import json
import shutil
from datetime import date

import pytest

from inference_ledger.pipeline import run_pipeline
from inference_ledger.sample import SCENARIO_QUARTERS
from tests.reliability_support import (
    AS_OF,
    accounting_balances,
    copy_landing,
    generate_small,
    is_period_folder,
    isolated_ledger,
    marts_hash,
    query,
)

# End to end: five pipeline runs over generated data.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    return generate_small(tmp_path_factory.mktemp("idem") / "landing", end="2024-Q2")


@pytest.fixture(scope="module")
def in_order(spark, pg_url, landing, tmp_path_factory):
    """Three runs of the whole range on one ledger: incremental, incremental, full re-read."""
    with isolated_ledger(pg_url, tmp_path_factory.mktemp("idem_home"), "idem") as url:
        hashes, runs = [], []
        for incremental in (True, True, False):
            runs.append(run_pipeline(landing, as_of=AS_OF, incremental=incremental))
            hashes.append(marts_hash(url))
        summary = query(
            url,
            "SELECT period_label, inference_spend_usd, revshare_paid_usd, revshare_received_usd"
            " FROM marts.quarterly_summary ORDER BY 1",
        )
        yield {"hashes": hashes, "runs": runs, "summary": summary, "bad": accounting_balances(url)}


def test_same_range_three_times_gives_identical_marts(in_order):
    first, second, third = in_order["hashes"]
    assert first == second == third
    assert all(count > 0 for _, count in first.values())
    # Not three identical empty or doubled results: the scenario's figures, once.
    assert in_order["summary"] == [
        (q, t.inference_spend_usd, t.revshare_paid_usd, t.revshare_received_usd)
        for q, t in sorted(SCENARIO_QUARTERS.items())
        if q in ("2024-Q1", "2024-Q2")
    ]
    assert in_order["bad"] == []
    reads = [r.rows_read for r in in_order["runs"]]
    # The second run skipped the unchanged billing months; the third re-read everything.
    assert reads[0] == reads[2] > reads[1]


def _move(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(src, dst)


def test_nights_delivered_and_run_in_reverse_order(spark, pg_url, landing, in_order, tmp_path):
    """Night 1 delivers the second quarter: only the newest month-to-date export run of each
    month and the usage of those days; it is run first, for Q2 only. Night 2 delivers the
    first quarter and, late, the older Q2 export runs (which must not win over the newer ones
    already delivered); it is run for Q1 only. The marts equal the in-order runs'."""
    full = copy_landing(landing, tmp_path / "full")
    night1 = tmp_path / "landing"
    held = tmp_path / "held"
    copy_landing(full, night1)
    late_runs = 0
    # Runs at any depth (Cost Management's layout); a run's month is its period folder.
    manifests = sorted((night1 / "billing" / "azure").rglob("manifest.json"))
    period_of = {m: next(part for part in m.parts if is_period_folder(part)) for m in manifests}
    # Read before anything moves: a moved sibling's manifest is no longer where it was.
    submitted = {m: json.loads(m.read_text())["runInfo"]["submittedTime"] for m in manifests}
    for manifest in manifests:
        month = period_of[manifest][:6]
        newest = max(submitted[m] for m in manifests if period_of[m] == period_of[manifest])
        q2 = month in ("202404", "202405", "202406")
        if not q2 or submitted[manifest] != newest:
            late_runs += q2
            _move(manifest.parent, held / manifest.parent.relative_to(night1))
    for day in sorted(night1.glob("usage/*/*")):
        if date.fromisoformat(day.name) < date(2024, 4, 1):
            _move(day, held / day.relative_to(night1))
    assert late_runs > 0

    with isolated_ledger(pg_url, tmp_path / "home", "idem_rev") as url:
        run_pipeline(night1, date(2024, 4, 1), date(2024, 7, 1), as_of=AS_OF)
        assert query(url, "SELECT period_label FROM marts.quarterly_summary") == [("2024-Q2",)]
        for path in sorted(p for p in held.rglob("*") if p.is_file()):
            target = night1 / path.relative_to(held)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        run_pipeline(night1, date(2024, 1, 1), date(2024, 4, 1), as_of=AS_OF)
        assert marts_hash(url) == in_order["hashes"][0]
        # The late older runs were read and recorded as superseded, not added.
        superseded = query(
            url,
            "SELECT count(*) FROM audit.input_files f JOIN audit.runs r USING (run_id)"
            " WHERE f.source = 'billing.azure' AND f.rows_superseded = f.rows_read"
            " AND f.rows_read > 0 AND f.path LIKE '%%/2024040%%'"
            " AND r.run_id = (SELECT run_id FROM audit.runs ORDER BY started_at DESC LIMIT 1)",
        )[0][0]
        assert superseded > 0
        assert accounting_balances(url) == []
