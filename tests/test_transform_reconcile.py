"""Revenue-share reconciliation on tiny hand-built inputs, exact values."""

from __future__ import annotations

from datetime import date

from inference_ledger.transform import reconcile, summary
from tests.helpers import D, by_key, lake_df, revenue, statement, term

Q1, Q2, Q3 = (
    ("2024-01-01", "2024-04-01"),
    ("2024-04-01", "2024-07-01"),
    ("2024-07-01", "2024-10-01"),
)


def run(
    spark,
    terms,
    revenue_rows,
    statements,
    as_of=date(2025, 1, 1),
    start=date(2024, 1, 1),
    end=date(2024, 10, 1),
):
    periods = reconcile.periods_frame(spark, start, end)
    df = reconcile.revshare_reconciliation(
        lake_df(spark, "contract_terms", terms),
        lake_df(spark, "revenue_lines", revenue_rows),
        lake_df(spark, "settlements", statements),
        periods,
        as_of,
    )
    return [r.asDict() for r in df.collect()], periods, df


def test_payable_statuses_and_arithmetic(spark):
    terms = [
        term(
            "PAY", "payable", "revenue:api|chat", "0.20", "2024-01-01", tol_abs="10.00", tol_pct="0"
        )
    ]
    rev = [
        revenue("r1", "2024-01-15", "api", "1000.00"),
        revenue("r2", "2024-02-01", "chat", "500.00"),
        revenue("r3", "2024-02-01", "other", "999.00"),  # not in the basis
        revenue("r4", "2024-03-31", "api", "-100.00"),  # refund
        revenue("r5", "2024-04-10", "api", "2000.00"),
        revenue("r6", "2024-07-10", "api", "3000.00"),
    ]
    stm = [
        statement("S1", "PAY", "payable", *Q1, "285.00"),  # expected 280.00, +5 within tolerance 10
        statement("S2", "PAY", "payable", *Q2, "350.00"),  # expected 400.00 -> underpaid
    ]
    rows, _, _ = run(spark, terms, rev, stm)
    got = by_key(rows, "period_label")
    q1 = got["2024-Q1"]
    assert q1["basis_usd"] == D("1400.00")
    assert q1["rate"] == D("0.2")
    assert q1["expected_usd"] == D("280.00")
    assert q1["settled_usd"] == D("285.00")
    assert q1["variance_usd"] == D("5.00")
    assert q1["variance_pct"] == D("0.0178571429")
    assert q1["status"] == "matched"
    assert q1["implied_basis_usd"] == D("1425.00")
    assert q1["statement_ids"] == "S1"
    assert got["2024-Q2"]["status"] == "underpaid"
    assert got["2024-Q2"]["variance_usd"] == D("-50.00")
    # No statement for Q3 and its payment terms (30 days after 2024-10-01) have elapsed.
    assert got["2024-Q3"]["status"] == "missing_settlement"
    assert got["2024-Q3"]["expected_usd"] == D("600.00")


def test_pending_overpaid_unexpected(spark):
    terms = [term("PAY", "payable", "revenue:api", "0.10", "2024-01-01", "2024-04-01", days=60)]
    rev = [revenue("r1", "2024-02-01", "api", "1000.00")]
    stm = [
        statement("S1", "PAY", "payable", *Q1, "150.00"),  # expected 100 -> overpaid
        statement("S2", "PAY", "payable", *Q2, "10.00"),  # no terms in effect in Q2
    ]
    rows, _, _ = run(spark, terms, rev, stm, as_of=date(2024, 5, 1))
    got = by_key(rows, "period_label")
    assert got["2024-Q1"]["status"] == "overpaid"
    assert got["2024-Q2"]["status"] == "unexpected_settlement"
    assert got["2024-Q2"]["expected_usd"] is None
    # Pending: nothing settled and the payment terms have not elapsed at the as-of date.
    rows, _, _ = run(spark, terms, rev, [], as_of=date(2024, 5, 1))
    assert by_key(rows, "period_label")["2024-Q1"]["status"] == "pending"


def test_mid_period_rate_change_applies_by_revenue_date(spark):
    terms = [
        term("PAY", "payable", "revenue:api", "0.20", "2024-01-01", "2024-02-15"),
        term("PAY", "payable", "revenue:api", "0.10", "2024-02-15"),
    ]
    rev = [
        revenue("r1", "2024-01-10", "api", "1000.00"),
        revenue("r2", "2024-03-01", "api", "1000.00"),
    ]
    rows, _, _ = run(
        spark, terms, rev, [statement("S1", "PAY", "payable", *Q1, "300.00")], end=date(2024, 4, 1)
    )
    q1 = by_key(rows, "period_label")["2024-Q1"]
    assert q1["basis_usd"] == D("2000.00")
    assert q1["expected_usd"] == D("300.00")  # 200 + 100
    assert q1["rate"] == D("0.15")  # effective blended rate
    assert q1["status"] == "matched"


def test_cap_reached_inside_a_period(spark):
    terms = [term("PAY", "payable", "revenue:api", "0.20", "2024-01-01", cap="500.00")]
    rev = [
        revenue("r1", "2024-02-01", "api", "2000.00"),
        revenue("r2", "2024-05-01", "api", "2000.00"),
    ]
    stm = [
        statement("S1", "PAY", "payable", *Q1, "400.00"),
        statement("S2", "PAY", "payable", *Q2, "100.00"),
    ]
    rows, _, _ = run(spark, terms, rev, stm, end=date(2024, 7, 1))
    got = by_key(rows, "period_label")
    assert got["2024-Q1"]["expected_usd"] == D("400.00")
    assert got["2024-Q1"]["cap_remaining_usd"] == D("100.00")
    assert got["2024-Q2"]["expected_usd"] == D("100.00")  # 400 uncapped, 100 left under the cap
    assert got["2024-Q2"]["cap_remaining_usd"] == D("0.00")
    assert got["2024-Q2"]["status"] == "matched"


def test_reported_basis_and_end_of_receivable_terms(spark):
    terms = [term("RCV", "receivable", "reported", "0.20", "2024-01-01", "2024-05-01")]
    stm = [statement("R1", "RCV", "receivable", *Q1, "20.00", basis="100.00")]
    rows, _, _ = run(spark, terms, [], stm)
    got = by_key(rows, "period_label")
    assert got["2024-Q1"]["basis_usd"] == D("100.00")
    assert got["2024-Q1"]["expected_usd"] == D("20.00")
    assert got["2024-Q1"]["status"] == "matched"
    # Terms end 2024-05-01: Q2 still has a row (part of it was in effect); Q3 has none.
    assert set(got) == {"2024-Q1", "2024-Q2"}


def test_quarterly_summary_from_spend_and_reconciliation(spark):
    terms = [
        term("PAY", "payable", "revenue:api", "0.20", "2024-01-01"),
        term("RCV", "receivable", "reported", "0.20", "2024-01-01"),
    ]
    rev = [revenue("r1", "2024-02-01", "api", "1000.00")]
    stm = [
        statement("S1", "PAY", "payable", *Q1, "200.00"),
        statement("R1", "RCV", "receivable", *Q1, "30.00", basis="150.00"),
    ]
    _, periods, rec = run(spark, terms, rev, stm, end=date(2024, 4, 1))
    spend = spark.createDataFrame(
        [
            (date(2024, 1, 5), "inference", D("700.00")),
            (date(2024, 3, 5), "inference", D("100.00")),
            (date(2024, 3, 5), "training", D("999.00")),
        ],
        "usage_date date, workload string, billed_cost_usd decimal(38,10)",
    )
    row = summary.quarterly_summary(periods, spend, rec).collect()[0].asDict()
    assert row["period_label"] == "2024-Q1"
    assert row["fiscal_period_label"] == "FY24-Q3"
    assert row["inference_spend_usd"] == D("800.00")
    assert row["revshare_paid_usd"] == D("200.00")
    assert row["implied_revenue_usd"] == D("1000.00")
    assert row["revshare_received_usd"] == D("30.00")
    assert row["net_revshare_usd"] == D("-170.00")
    assert row["spend_to_implied_revenue_ratio"] == D("0.8")
