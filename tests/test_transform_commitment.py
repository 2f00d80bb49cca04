"""Commitment burn-down (marts.commitment_burndown) on hand-built bills, exact values."""

from __future__ import annotations

from datetime import date

import pytest

from inference_ledger.transform.commitment import BurndownRule, commitment_burndown
from tests.helpers import D, lake_df
from tests.test_transform_spend import line


def commitment(cid, amount, start, end, services=None, meters=None, provider=None):
    return {
        "commitment_id": cid, "counterparty": "Cloud", "amount": D(amount), "currency": "USD",
        "fx_rate": D(1), "amount_usd": D(amount), "start_date": date.fromisoformat(start),
        "end_date": date.fromisoformat(end), "eligible_services": services,
        "eligible_meters": meters, "provider": provider, "source_file": "c.csv",
    }  # fmt: skip


def _bill(day, cost, service="Virtual Machines", **kw):
    return {**line(day, cost, **kw), "service_name": service}


def _burndown(spark, start, end="2024-04-01", rule=None):
    commitments = lake_df(spark, "commitments", [
        # 182 days; burns on Foundry Models and on the ND96 meter of any service.
        commitment("C1", "1000.00", "2024-01-01", "2024-07-01", "Foundry Models", "ND96 | H100"),
        # Starts mid-month (46 days), every service, Amazon's bill only.
        commitment("C2", "10.00", "2024-01-15", "2024-03-01", "*", provider="Amazon"),
    ])  # fmt: skip
    billing = lake_df(spark, "billing_lines", [
        _bill("2023-12-31", "100.00", sku="ND96"),                   # before the term
        _bill("2024-01-05", "31.00", sku="ND96"),
        _bill("2024-01-06", "5.00", sku="Hot LRS"),                  # not eligible
        _bill("2024-02-07", "58.00", service="Foundry Models", sku="ND96"),  # both match: once
        _bill("2024-03-08", "50.00", sku="H100", workload="training"),  # any workload counts
        _bill("2024-03-09", "12.00", service="Foundry Models", sku="gpt"),
        _bill("2024-01-10", "1.00", provider="Amazon", sku="x"),     # before C2 starts
        _bill("2024-01-20", "8.50", provider="Amazon", sku="x"),
        _bill("2024-02-10", "3.40", provider="Amazon", sku="x"),
    ])  # fmt: skip
    rows = commitment_burndown(
        commitments, billing, date.fromisoformat(start), date.fromisoformat(end), rule
    ).collect()
    return {(r["commitment_id"], r["month_start"].month): r.asDict() for r in rows}


COLS = ("eligible_spend_usd", "cumulative_consumed_usd", "remaining_usd", "term_elapsed_ratio",
        "consumed_ratio", "daily_run_rate_usd", "days_left_in_term", "projected_consumed_usd",
        "projected_variance_usd", "projection_status")  # fmt: skip


def test_burndown_accumulates_and_projects_at_the_trailing_run_rate(spark):
    got = _burndown(spark, "2024-01-01")
    table = {k: tuple(v[c] for c in COLS) for k, v in got.items()}
    assert table == {
        # Jan: 31/31 a day x 151 days left = 151 more -> 182 of 1,000: a shortfall of 818.
        ("C1", 1): (D("31"), D("31"), D("969"), D("0.1703296703"), D("0.031"), D("1"), 151,
                    D("182"), D("-818"), "shortfall"),
        # Feb: 89 over 60 days = 1.4833333333 a day x 122 = 180.9666666626.
        ("C1", 2): (D("58"), D("89"), D("911"), D("0.3296703297"), D("0.089"), D("1.4833333333"),
                    122, D("269.9666666626"), D("-730.0333333374"), "shortfall"),
        # Mar: 151 over 91 days = 1.6593406593 a day x 91 = 150.9999999963.
        ("C1", 3): (D("62"), D("151"), D("849"), D("0.5"), D("0.151"), D("1.6593406593"), 91,
                    D("301.9999999963"), D("-698.0000000037"), "shortfall"),
        # C2's January has 17 days in the term: 8.5 / 17 = 0.5 a day x 29 = 14.5 more.
        ("C2", 1): (D("8.5"), D("8.5"), D("1.5"), D("0.3695652174"), D("0.85"), D("0.5"), 29,
                    D("23"), D("13"), "surplus"),
        # Its last month: consumed beyond the commitment, nothing left to project.
        ("C2", 2): (D("3.4"), D("11.9"), D("-1.9"), D("1"), D("1.19"), D("0.2586956522"), 0,
                    D("11.9"), D("1.9"), "surplus"),
    }  # fmt: skip
    c1 = got[("C1", 1)]
    assert (c1["term_start"], c1["term_end"], c1["commitment_usd"]) == (
        date(2024, 1, 1),
        date(2024, 7, 1),
        D("1000"),
    )
    assert "trailing 3 months" in c1["projection_method"]


def test_burndown_of_a_later_range_still_counts_from_the_term_start(spark):
    got = _burndown(spark, "2024-02-01")
    assert sorted(got) == [("C1", 2), ("C1", 3), ("C2", 2)]
    assert got[("C1", 2)]["cumulative_consumed_usd"] == D("89")
    assert got[("C1", 3)]["remaining_usd"] == D("849")


def test_burndown_trailing_window_is_config(spark, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: 4\ntrailing_months: 1\n")
    got = _burndown(spark, "2024-03-01", rule=BurndownRule.load(cfg))
    # March alone: 62 over 31 days = 2 a day x 91 days left.
    r = got[("C1", 3)]
    assert (r["daily_run_rate_usd"], r["projected_consumed_usd"]) == (D("2"), D("333"))
    assert "trailing 1 months" in r["projection_method"] and "version 4" in r["projection_method"]


@pytest.mark.parametrize("text", ["version: 1\ntrailing_months: 0\n", "trailing_months: 3\n"])
def test_burndown_rule_rejects_bad_config(tmp_path, text):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ValueError):
        BurndownRule.load(cfg)
    assert BurndownRule.load().trailing_months == 3


def _focus(cid, amount, start, end, category="Spend", status="Active", provider="Acme"):
    return {
        "commitment_id": cid, "category": category, "lifecycle_status": status,
        "provider": provider, "amount": D(amount), "currency": "USD", "fx_rate": D(1),
        "amount_usd": D(amount), "start_date": date.fromisoformat(start),
        "end_date": date.fromisoformat(end), "source_file": "cc.csv",
    }  # fmt: skip


def _applied(*elements) -> str:
    """A lake `lineage` value holding the charge's ContractApplied as delivered."""
    import json

    return json.dumps({"ContractApplied": json.dumps({"Elements": list(elements)})})


def test_the_bills_own_commitments_burn_down_by_what_contract_applied_says(spark):
    feed = lake_df(spark, "commitments", [
        commitment("C2", "10.00", "2024-01-15", "2024-03-01", "*", provider="Amazon"),
        # Every Microsoft service is eligible, but the bill names C3 in ContractApplied: only
        # what it applies counts.
        commitment("C3", "50.00", "2024-01-01", "2024-03-01", "*", provider="Microsoft"),
    ])  # fmt: skip
    focus = lake_df(spark, "contract_commitments", [
        _focus("CMT-1", "100.00", "2024-01-01", "2024-03-01"),
        _focus("CMT-P", "50.00", "2024-01-01", "2024-03-01", status="Proposed"),  # no effect yet
        _focus("CMT-U", "7.00", "2024-01-01", "2024-03-01", category="Usage"),  # a quantity
        _focus("C2", "999.00", "2024-01-15", "2024-03-01"),  # the feed's C2 restates it
    ])  # fmt: skip
    eur = {**line("2024-01-05", "40.00"), "billing_currency": "EUR", "fx_rate": D("1.1"),
           "billed_cost_usd": D("44.00")}  # fmt: skip
    billing = lake_df(spark, "billing_lines", [
        {**eur, "lineage": _applied(
            {"ContractCommitmentId": "CMT-1", "ContractCommitmentAppliedCost": 30.5},
            # The spec text's spelling of the id is read too.
            {"ContractCommitmentID": "C3", "ContractCommitmentAppliedCost": 5},
            {"ContractCommitmentId": "CMT-P", "ContractCommitmentAppliedCost": 9.5},
        )},
        {**line("2024-02-03", "20.00"), "lineage": _applied(
            {"ContractCommitmentId": "CMT-1", "ContractCommitmentAppliedCost": "20.0000000001"},
        )},
        _bill("2024-01-20", "8.50", provider="Amazon", sku="x"),
    ])  # fmt: skip
    from inference_ledger.transform.commitment import binding_commitments

    rows = commitment_burndown(
        binding_commitments(feed, focus), billing, date(2024, 1, 1), date(2024, 3, 1)
    ).collect()
    got = {
        (r["commitment_id"], r["month_start"].month): (
            r["consumption_basis"], r["counterparty"], r["commitment_usd"],
            *(r[c] for c in COLS),
        )
        for r in rows
    }  # fmt: skip
    applied, rule = "ContractApplied", "eligible services and meters"
    assert got == {
        # 30.5 EUR at the line's 1.1 = 33.55; 33.55 / 31 days x 29 days left.
        ("CMT-1", 1): (applied, "Acme", D("100"), D("33.55"), D("33.55"), D("66.45"),
                       D("0.5166666667"), D("0.3355"), D("1.0822580645"), 29,
                       D("64.9354838705"), D("-35.0645161295"), "shortfall"),
        ("CMT-1", 2): (applied, "Acme", D("100"), D("20.0000000001"), D("53.5500000001"),
                       D("46.4499999999"), D("1"), D("0.5355"), D("0.8925"), 0,
                       D("53.5500000001"), D("-46.4499999999"), "shortfall"),
        ("C2", 1): (rule, "Cloud", D("10"), D("8.5"), D("8.5"), D("1.5"), D("0.3695652174"),
                    D("0.85"), D("0.5"), 29, D("23"), D("13"), "surplus"),
        ("C2", 2): (rule, "Cloud", D("10"), D("0"), D("8.5"), D("1.5"), D("1"), D("0.85"),
                    D("0.1847826087"), 0, D("8.5"), D("-1.5"), "shortfall"),
        # 5 EUR at 1.1; the Microsoft lines C3's "*" would match do not count.
        ("C3", 1): (applied, "Cloud", D("50"), D("5.5"), D("5.5"), D("44.5"), D("0.5166666667"),
                    D("0.11"), D("0.1774193548"), 29, D("10.6451612892"), D("-39.3548387108"),
                    "shortfall"),
        ("C3", 2): (applied, "Cloud", D("50"), D("0"), D("5.5"), D("44.5"), D("1"), D("0.11"),
                    D("0.0916666667"), 0, D("5.5"), D("-44.5"), "shortfall"),
    }  # fmt: skip
