"""Projections on hand-computed series, exact values: the four-quarter forecast of a known
exponential and a linear series, and the quarter a cap is reached."""

from __future__ import annotations

from datetime import date

import pytest

from inference_ledger.spark import local_frame
from inference_ledger.transform.outlook import (
    OutlookRule,
    cap_projection,
    metric_history,
    quarterly_forecast,
)
from inference_ledger.transform.reconcile import periods_frame
from tests.helpers import D, lake_df, term
from tests.test_transform_spend import line

Q = [date(2024, 1, 1), date(2024, 4, 1), date(2024, 7, 1), date(2024, 10, 1)]
LABELS = ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]


def _history(spark, series: dict[str, list[str]]):
    rows = [
        (metric, label, start, D(v))
        for metric, values in series.items()
        for label, start, v in zip(LABELS, Q, values, strict=True)
    ]
    return local_frame(
        spark,
        rows,
        "metric string, period_label string, period_start date, value_usd decimal(24,10)",
    )


def test_forecast_of_exponential_and_linear_series(spark):
    history = _history(spark, {
        "inference_spend_usd": ["100", "150", "225", "337.5"],  # x1.5 every quarter
        "revshare_paid_usd": ["100", "200", "300", "400"],      # +100 every quarter
        "revshare_received_usd": ["10", "0", "5", "5"],         # a zero quarter
    })  # fmt: skip
    terms = lake_df(spark, "contract_terms", [
        term("P", "payable", "revenue:api", "0.2", "2023-01-01"),
        term("R", "receivable", "reported", "0.2", "2023-01-01", "2025-04-01"),
    ])  # fmt: skip
    rows = quarterly_forecast(history, terms, date(2024, 10, 1), date(2025, 1, 1)).collect()
    got = {
        (r["metric"], r["period_label"]): (
            r["projected_usd"], r["projected_low_usd"], r["projected_high_usd"]
        )
        for r in rows
    }  # fmt: skip
    assert got == {
        # Exponential: every ratio is 1.5, so the band is a line and the forecast exact.
        ("inference_spend_usd", "2025-Q1"): (D("506.25"),) * 3,
        ("inference_spend_usd", "2025-Q2"): (D("759.375"),) * 3,
        ("inference_spend_usd", "2025-Q3"): (D("1139.0625"),) * 3,
        ("inference_spend_usd", "2025-Q4"): (D("1708.59375"),) * 3,
        # Linear: ratios 2, 1.5, 1.3333333333 -> mean 1.6111111111, band 1.3333333333 .. 2;
        # each quarter x the ratio, rounded to 10 places.
        ("revshare_paid_usd", "2025-Q1"): (D("644.44444444"), D("533.33333332"), D("800")),
        ("revshare_paid_usd", "2025-Q2"): (D("1038.2716049240"), D("711.1111110756"), D("1600")),
        ("revshare_paid_usd", "2025-Q3"): (D("1672.7709190327"), D("948.1481480771"), D("3200")),
        ("revshare_paid_usd", "2025-Q4"): (D("2695.0198139785"), D("1264.1975307379"), D("6400")),
        # 0 -> 5 cannot be measured as growth: no projection while the terms run, 0 after.
        ("revshare_received_usd", "2025-Q1"): (None, None, None),
        ("revshare_received_usd", "2025-Q2"): (D("0"),) * 3,
        ("revshare_received_usd", "2025-Q3"): (D("0"),) * 3,
        ("revshare_received_usd", "2025-Q4"): (D("0"),) * 3,
    }
    paid = next(r for r in rows if r["metric"] == "revshare_paid_usd")
    assert (paid["growth_ratio"], paid["growth_ratio_low"], paid["growth_ratio_high"]) == (
        D("1.6111111111"), D("1.3333333333"), D("2")
    )  # fmt: skip
    assert {r["basis_period_label"] for r in rows} == {"2024-Q4"}
    assert all(r["is_projection"] and r["method"].startswith("PROJECTION") for r in rows)
    assert {r["horizon_quarters"] for r in rows} == {1, 2, 3, 4}


def test_no_forecast_from_an_incomplete_window(spark):
    history = _history(spark, {"inference_spend_usd": ["100", "150", "225", "337.5"]})
    terms = lake_df(spark, "contract_terms", [])
    rows = quarterly_forecast(history, terms, date(2024, 7, 1), date(2024, 10, 1)).collect()
    # Basis 2024-Q3 has three quarters behind it, not four.
    assert {r["projected_usd"] for r in rows} == {None} and len(rows) == 4


def _rec(spark, agreement, expected, cap):
    used, rows = D(0), []
    for label, start, e in zip(LABELS, Q, expected, strict=True):
        used = min(used + D(e), D(cap))
        rows.append((label, start, agreement, "payable", D(e), used, False))
    return local_frame(
        spark,
        rows,
        "period_label string, period_start date, agreement_id string, direction string,"
        " expected_usd decimal(38,10), cap_used_usd decimal(38,10), is_adjustment boolean",
    )


def test_cap_quarter_of_a_hand_computed_series(spark):
    rec = (
        _rec(spark, "GROW", ["10", "20", "30", "90"], "1000")
        .unionByName(_rec(spark, "SHORT", ["10", "20", "30", "90"], "1000"))
        .unionByName(_rec(spark, "DONE", ["30", "40", "50", "60"], "100"))
        .unionByName(_rec(spark, "NOCAP", ["1", "2", "3", "4"], "999999"))
    )
    terms = lake_df(spark, "contract_terms", [
        term("GROW", "payable", "revenue:api", "0.2", "2024-01-01", "2031-01-01", cap="1000"),
        term("SHORT", "payable", "revenue:api", "0.2", "2024-01-01", "2025-07-01", cap="1000"),
        term("DONE", "payable", "revenue:api", "0.2", "2024-01-01", cap="100"),
        term("NOCAP", "payable", "revenue:api", "0.2", "2024-01-01"),
    ])  # fmt: skip
    rows = cap_projection(rec, terms, date(2024, 10, 1), date(2025, 1, 1)).collect()
    cols = ("cap_used_usd", "cap_remaining_usd", "growth_ratio", "cap_reached_period_label",
            "projected_cap_period_label", "projected_cap_period_label_early",
            "projected_cap_period_label_late", "horizon_end_period_label")  # fmt: skip
    got = {r["agreement_id"]: tuple(r[c] for c in cols) for r in rows}
    assert got == {
        # Ratios 2, 1.5, 3 -> mean 2.1666666667. From 150 used (850 left), quarterly shares
        # 195.000000003, 422.5000000130, 915.4166667... reach it in the 3rd quarter; at 3x
        # (270, 810) in the 2nd; at 1.5x (135, 202.5, 303.75, 455.625) in the 4th.
        "GROW": (D("150"), D("850"), D("2.1666666667"), None, "2025-Q3", "2025-Q2", "2025-Q4",
                 "2030-Q4"),
        # Same series, but the terms end 2025-07-01: only two quarters are searched.
        "SHORT": (D("150"), D("850"), D("2.1666666667"), None, None, "2025-Q2", None, "2025-Q2"),
        # Reached in 2024-Q3 (30 + 40 + 50 >= 100): an actual, nothing to project.
        "DONE": (D("100"), D("0"), D("1.2611111111"), "2024-Q3", None, None, None, "2034-Q4"),
    }  # fmt: skip
    assert all(r["is_projection"] and "expected share" in r["method"] for r in rows)


def test_metric_history_fills_every_quarter(spark):
    billing = lake_df(spark, "billing_lines", [
        line("2024-01-05", "10.00"), line("2024-02-05", "5.00", workload="training"),
    ])  # fmt: skip
    rec = local_frame(
        spark,
        [
            ("2024-Q1", "payable", D("2"), False),
            ("2024-Q2", "receivable", D("3"), False),
            ("2024-Q2", "receivable", D("100"), True),
        ],  # fmt: skip
        "period_label string, direction string, settled_usd decimal(38,10), is_adjustment boolean",
    )
    history = metric_history(periods_frame(spark, Q[0], Q[2]), billing, rec)
    got = {(r["metric"], r["period_label"]): r["value_usd"] for r in history.collect()}
    assert got == {
        ("inference_spend_usd", "2024-Q1"): D("10"),
        ("inference_spend_usd", "2024-Q2"): D("0"),
        ("revshare_paid_usd", "2024-Q1"): D("2"),
        ("revshare_paid_usd", "2024-Q2"): D("0"),
        ("revshare_received_usd", "2024-Q1"): D("0"),
        ("revshare_received_usd", "2024-Q2"): D("3"),
    }


@pytest.mark.parametrize("text", ["version: 1\ntrailing_quarters: 1\n", "forecast_quarters: 4\n"])
def test_outlook_rule_rejects_bad_config(tmp_path, text):
    cfg = tmp_path / "o.yaml"
    cfg.write_text(text)
    with pytest.raises(ValueError):
        OutlookRule.load(cfg)
    assert OutlookRule.load().trailing_quarters == 4


def test_a_thousandfold_quarter_or_a_projection_past_the_range_is_null_not_a_failure(spark):
    """A late $1M entry after a $843 quarter is a 1186x "growth": no fit (and no run that
    fails on a decimal overflow); a fit that compounds past 10^14 USD projects null there."""
    history = _history(spark, {
        "inference_spend_usd": ["800", "843", "1000000", "1000000"],  # 1186.2396204033x
        "revshare_paid_usd": ["1", "999", "998001", "997002999"],  # x999 each quarter
        "revshare_received_usd": ["10", "10", "10", "10"],
    })  # fmt: skip
    terms = lake_df(spark, "contract_terms", [
        term("P", "payable", "revenue:api", "0.2", "2023-01-01"),
        term("R", "receivable", "reported", "0.2", "2023-01-01"),
    ])  # fmt: skip
    rows = quarterly_forecast(history, terms, date(2024, 10, 1), date(2025, 1, 1)).collect()
    got = {(r["metric"], r["period_label"]): (r["growth_ratio"], r["projected_usd"]) for r in rows}
    assert got[("inference_spend_usd", "2025-Q1")] == (None, None)
    # 997002999 x 999 = 996005996001 in 2025-Q1; x 999 again = 995009990004999, past 10^14
    # USD: null from 2025-Q2 on.
    assert got[("revshare_paid_usd", "2025-Q1")] == (D("999"), D("996005996001"))
    assert got[("revshare_paid_usd", "2025-Q2")] == (D("999"), None)
    assert got[("revshare_received_usd", "2025-Q4")] == (D("1"), D("10"))
