"""FOCUS 1.3 Contract Commitment dataset (ingest/contract_commitments.py): the FOCUS project's
own sample and hand-built variants of it; every delivered row loaded, deduplicated, superseded
or quarantined with its field and reason."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest

from inference_ledger.ingest import contract_commitments as CC
from inference_ledger.ingest import exports
from inference_ledger.ingest import records as R
from tests.billing_support import read_billing_rows
from tests.helpers import D, lake_df

REAL = Path(__file__).parent / "data" / "real" / "contract_commitment_scenario_1.csv"


@pytest.fixture(scope="module")
def eur_december(spark):
    return lake_df(
        spark,
        "fx_rates",
        [
            {"rate_date": date(2025, 12, 1), "currency": "EUR", "usd_per_unit": D("1.08"),
             "source_file": "f"},
        ],
    )  # fmt: skip


def _deliver(landing: Path, run: str, name: str, body: bytes) -> Path:
    run_dir = landing / "billing/focus/acme" / "20251201-20251231" / run
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "cost.csv").write_bytes(b"")  # the cost file the dataset is delivered beside
    (run_dir / name).write_bytes(body)
    return run_dir / name


def _records(spark, landing: Path, fx):
    runs = [r for r in exports.discover_runs(landing) if r.dataset == exports.CONTRACT_COMMITMENT]
    rows = CC.read_rows(spark, runs)
    return CC.commitment_records(rows, fx)


def _variant(edit) -> bytes:
    """The real sample with rows edited by `edit(list_of_dicts) -> list_of_dicts`."""
    text = REAL.read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    header = next(csv.reader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.DictWriter(out, header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(edit(rows))
    return out.getvalue().encode()


def test_the_focus_sample_loads_with_its_amounts_in_usd(spark, tmp_path, eur_december):
    path = _deliver(tmp_path, "run-1", REAL.name, REAL.read_bytes())
    records = _records(spark, tmp_path, eur_december)
    got = sorted(
        (r["commitment_id"], r["category"], r["lifecycle_status"], r["provider"], r["amount"],
         r["currency"], r["amount_usd"], r["quantity"], r["unit"], r["start_date"],
         r["end_date"], r["status"], r["reason"], r["field"], r["line_number"])
        for r in records.collect()
    )  # fmt: skip
    assert got == [
        ("CMT-RI-002", "Usage", "Active", "Acme Co", D("46250.00"), "EUR", D("49950.00"),
         D("10.00"), "Instance-Hours", date(2025, 12, 1), date(2026, 12, 1), "loaded", None,
         None, 3),
        ("CMT-SPEND-001", "Spend", "Active", "Acme Co", D("925000.00"), "EUR", D("999000.00"),
         D("1000000.00"), "USD", date(2025, 12, 1), date(2028, 12, 1), "loaded", None, None, 2),
        # Its term starts on 2026-01-15, a day the FX feed has no EUR rate for.
        ("CMT-SaaS-003", "Spend", "Pending", "DataStreamer", D("111000.00"), "EUR", None,
         D("120000.00"), "Credits", date(2026, 1, 15), date(2027, 1, 15), "quarantined",
         "no FX rate to USD for EUR on 2026-01-15 (ContractCommitmentPeriodStart): the amount"
         " cannot be stated in USD", "BillingCurrency", 4),
    ]  # fmt: skip
    assert {r["source_file"] for r in records.collect()} == {str(path)}
    bad = records.filter(records.status == R.QUARANTINED).first()
    assert "CMT-SaaS-003" in bad["raw_record"]


def test_each_delivery_is_accounted_for_and_the_newest_wins(spark, tmp_path, eur_december):
    def newer(rows):
        rows[0]["ContractCommitmentCost"] = "930000.00"
        rows[0]["ContractCommitmentLastUpdated"] = "2026-03-01T10:00:00Z"
        return rows

    def broken(rows):
        a, b, c = (dict(r) for r in rows)
        a["ContractCommitmentId"] = "CMT-X-1"
        a["ContractCommitmentCategory"] = "Committed"
        b["ContractCommitmentId"] = "CMT-X-2"
        b["ContractCommitmentPeriodEnd"] = "2025-11-01"
        c["ContractCommitmentId"] = "CMT-X-3"
        c["ContractCommitmentCost"] = ""
        d = dict(rows[0], ContractCommitmentId="CMT-X-4", ContractCommitmentApplicability="{oops")
        e = dict(rows[0], ContractCommitmentId="CMT-X-5", ContractCommitmentCost="1,000.00")
        f = dict(rows[0], ContractCommitmentId="CMT-X-6", ContractCommitmentLifecycleStatus="")
        # FOCUS writes period bounds as date-times: they load as the same days.
        g = dict(rows[0], ContractCommitmentId="CMT-X-7",
                 ContractCommitmentPeriodStart="2025-12-01T00:00:00Z",
                 ContractCommitmentPeriodEnd="2026-12-01T00:00:00Z")  # fmt: skip
        return [a, b, c, d, e, f, g]

    old = _deliver(tmp_path, "run-1", "commitments.csv", REAL.read_bytes())
    same = _deliver(tmp_path, "run-2", "commitments.csv", REAL.read_bytes())
    new = _deliver(tmp_path, "run-3", "commitments.csv", _variant(newer))
    bad = _deliver(tmp_path, "run-4", "more.csv", _variant(broken))
    records = _records(spark, tmp_path, eur_december)
    got = sorted(
        (r["commitment_id"] or "", Path(r["source_file"]).parent.name, r["line_number"],
         r["status"], r["reason"] or "", r["field"] or "")
        for r in records.collect()
    )  # fmt: skip
    restated = "a newer delivery of the commitment restates it: "
    fx = "no FX rate to USD for EUR on 2026-01-15 (ContractCommitmentPeriodStart): the amount"
    fx += " cannot be stated in USD"
    assert got == [
        ("CMT-RI-002", "run-1", 3, "deduplicated", f"the same commitment as in {new} line 3", ""),
        ("CMT-RI-002", "run-2", 3, "deduplicated", f"the same commitment as in {new} line 3", ""),
        ("CMT-RI-002", "run-3", 3, "loaded", "", ""),
        ("CMT-SPEND-001", "run-1", 2, "superseded", f"{restated}{new} line 2", ""),
        ("CMT-SPEND-001", "run-2", 2, "superseded", f"{restated}{new} line 2", ""),
        ("CMT-SPEND-001", "run-3", 2, "loaded", "", ""),
        ("CMT-SaaS-003", "run-1", 4, "deduplicated", f"the same commitment as in {new} line 4", ""),
        ("CMT-SaaS-003", "run-2", 4, "deduplicated", f"the same commitment as in {new} line 4", ""),
        ("CMT-SaaS-003", "run-3", 4, "quarantined", fx, "BillingCurrency"),
        ("CMT-X-1", "run-4", 2, "quarantined",
         "ContractCommitmentCategory must be one of ['Spend', 'Usage']",
         "ContractCommitmentCategory"),
        ("CMT-X-2", "run-4", 3, "quarantined",
         "ContractCommitmentPeriodEnd is not after ContractCommitmentPeriodStart",
         "ContractCommitmentPeriodEnd"),
        ("CMT-X-3", "run-4", 4, "quarantined", "a Spend commitment must carry ContractCommitmentCost",
         "ContractCommitmentCost"),
        ("CMT-X-4", "run-4", 5, "quarantined",
         "ContractCommitmentApplicability is not a JSON object", "ContractCommitmentApplicability"),
        ("CMT-X-5", "run-4", 6, "quarantined", "ContractCommitmentCost is not a decimal number",
         "ContractCommitmentCost"),
        ("CMT-X-6", "run-4", 7, "quarantined",
         "required field ContractCommitmentLifecycleStatus is empty",
         "ContractCommitmentLifecycleStatus"),
        ("CMT-X-7", "run-4", 8, "loaded", "", ""),
    ]  # fmt: skip
    loaded = {
        r["commitment_id"]: (r["amount_usd"], r["start_date"], r["end_date"])
        for r in records.filter(records.status == R.LOADED).collect()
    }
    assert loaded["CMT-SPEND-001"] == (D("1004400.00"), date(2025, 12, 1), date(2028, 12, 1))
    assert loaded["CMT-X-7"] == (D("999000.00"), date(2025, 12, 1), date(2026, 12, 1))
    assert {old, same, new, bad} == {Path(r["source_file"]) for r in records.collect()}


def test_a_bills_contract_applied_is_checked_and_kept(spark, tmp_path):
    """FOCUS's own 1.3 AI bill with a ContractApplied column added: a well-formed value loads
    (kept verbatim in lineage for the burn-down); one the burn-down could not read is
    quarantined naming the field."""
    from inference_ledger.ingest import billing
    from inference_ledger.workload import WorkloadRules
    from tests.test_ingest_real_samples import AURA, focus_run

    good = '{"Elements":[{"ContractId":"AGR-1","ContractCommitmentId":"CMT-1",'
    good += '"ContractCommitmentAppliedCost":1.125,"ContractCommitmentAppliedQuantity":null,'
    good += '"ContractCommitmentAppliedUnit":null}]}'
    values = [
        good,
        '{"Elements":[{"ContractCommitmentID":"CMT-1","ContractCommitmentAppliedCost":"2.25"}]}',
        "",
        '{"Elements":[{"ContractCommitmentAppliedCost":1}]}',  # no commitment named
        '{"Elements":[{"ContractCommitmentId":"CMT-1","ContractCommitmentAppliedCost":"abc"}]}',
        '{"Elements": "CMT-1"}',
        "CMT-1",
    ]
    text = AURA.read_text()
    header, first = list(csv.reader(io.StringIO(text)))[:2]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*header, "ContractApplied"])
    writer.writerows([*first, v] for v in values)
    focus_run(tmp_path, "cost.csv", out.getvalue().encode(), provider="aura-web")
    rows, _ = read_billing_rows(spark, exports.discover_runs(tmp_path))
    records = billing.billing_records(rows, lake_df(spark, "fx_rates", []), WorkloadRules.load())
    got = sorted(
        (r["line_number"], r["status"], r["field"], r["lineage"] and "ContractApplied" in r["lineage"])
        for r in records.collect()
    )  # fmt: skip
    assert got == [
        (2, "loaded", None, True),
        (3, "loaded", None, True),
        (4, "loaded", None, False),
        (5, "quarantined", "ContractApplied", True),
        (6, "quarantined", "ContractApplied", True),
        (7, "quarantined", "ContractApplied", True),
        (8, "quarantined", "ContractApplied", True),
    ]
    reason = records.filter(records.field == "ContractApplied").first()["reason"]
    assert reason.startswith("ContractApplied is not a FOCUS ContractApplied object")
