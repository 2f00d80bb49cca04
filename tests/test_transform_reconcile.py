"""Revenue-share reconciliation on tiny hand-built inputs, exact values."""

from __future__ import annotations

from datetime import date

from inference_ledger.spark import local_frame
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
    assert q1["variance_ratio"] == D("0.0178571429")
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


def _q1_summary(spark, received: str, spend_rows: list) -> dict:
    """Q1 summary of a payable (20% of 1000.00 revenue, 200.00 paid) and a reported receivable."""
    terms = [
        term("PAY", "payable", "revenue:api", "0.20", "2024-01-01"),
        term("RCV", "receivable", "reported", "0.20", "2024-01-01"),
    ]
    rev = [revenue("r1", "2024-02-01", "api", "1000.00")]
    stm = [
        statement("S1", "PAY", "payable", *Q1, "200.00"),
        statement("R1", "RCV", "receivable", *Q1, received, basis="150.00"),
    ]
    _, periods, rec = run(spark, terms, rev, stm, end=date(2024, 4, 1))
    spend = local_frame(
        spark, spend_rows, "usage_date date, workload string, billed_cost_usd decimal(38,10)"
    )
    return summary.quarterly_summary(periods, spend, rec).collect()[0].asDict()


def test_quarterly_summary_from_spend_and_reconciliation(spark):
    spend = [
        (date(2024, 1, 5), "inference", D("700.00")),
        (date(2024, 3, 5), "inference", D("100.00")),
        (date(2024, 3, 5), "training", D("999.00")),
    ]
    row = _q1_summary(spark, "30.00", spend)
    assert row["period_label"] == "2024-Q1"
    assert row["fiscal_period_label"] == "FY24-Q3"
    assert row["inference_spend_usd"] == D("800.00")
    assert row["revshare_paid_usd"] == D("200.00")
    assert row["implied_revenue_usd"] == D("1000.00")
    assert row["revshare_received_usd"] == D("30.00")
    assert row["net_revshare_usd"] == D("-170.00")
    assert row["spend_to_implied_revenue_ratio"] == D("0.8")


def test_settlement_for_an_agreement_no_contract_names(spark):
    # No terms at all: the row still shows, unexpected, with the statement's counterparty
    # (the staging gate requires one; a null would block the whole publish).
    terms = [term("PAY", "payable", "revenue:api", "0.20", "2024-01-01")]
    stm = [statement("S-U", "NO-SUCH", "receivable", *Q1, "10.00")]
    rows, _, _ = run(spark, terms, [], stm, end=date(2024, 4, 1))
    got = by_key(rows, "agreement_id")["NO-SUCH"]
    assert got["counterparty"] == "Partner"
    assert got["settled_usd"] == D("10.00")
    assert got["status"] == "unexpected_settlement"


def test_net_revshare_keeps_the_tenth_decimal_place(spark):
    # Spark's decimal(38,10) - decimal(38,10) keeps 9 places; the net must keep all 10.
    row = _q1_summary(spark, "30.0000000001", [])
    assert row["revshare_received_usd"] == D("30.0000000001")
    assert row["net_revshare_usd"] == D("-169.9999999999")


# ---------------------------------------------------------------- issue 5: more exact cases


def test_tolerance_and_due_date_are_on_the_row(spark):
    terms = [term("PAY", "payable", "revenue:api", "0.20", "2024-01-01", tol_abs="10.00",
                  tol_pct="0.05", days=45)]  # fmt: skip
    rev = [revenue("r1", "2024-01-15", "api", "1000.00")]
    stm = [statement("S1", "PAY", "payable", *Q1, "189.00")]  # expected 200, -11
    rows, _, _ = run(spark, terms, rev, stm, end=date(2024, 4, 1))
    q1 = rows[0]
    # max(10.00, 5% of 200 = 10.00) -> 10.00; |-11| > 10 -> underpaid
    assert q1["tolerance_usd"] == D("10.00")
    assert q1["status"] == "underpaid"
    assert q1["variance_ratio"] == D("-0.055")
    assert q1["payment_due_date"] == date(2024, 5, 16)  # 2024-04-01 + 45 days
    assert q1["basis_definition"] == "revenue:api"
    assert q1["basis_entry_count"] == 1
    assert q1["statement_basis_usd"] is None


def test_cap_reached_inside_a_period_keeps_the_contract_rate(spark):
    terms = [term("PAY", "payable", "revenue:api", "0.20", "2024-01-01", cap="500.00")]
    rev = [
        revenue("r1", "2024-02-01", "api", "2000.00"),
        revenue("r2", "2024-05-01", "api", "2000.00"),
        revenue("r3", "2024-08-01", "api", "2000.00"),
    ]
    stm = [
        statement("S1", "PAY", "payable", *Q1, "400.00"),
        statement("S2", "PAY", "payable", *Q2, "100.00"),
        statement("S3", "PAY", "payable", *Q3, "50.00"),
    ]
    got = by_key(run(spark, terms, rev, stm)[0], "period_label")
    q2, q3 = got["2024-Q2"], got["2024-Q3"]
    # Q2: 400 uncapped, 100 left under the cap -> expected 100, cap used 500, none left.
    assert (q2["expected_usd"], q2["cap_used_usd"], q2["cap_remaining_usd"]) == (
        D("100.00"),
        D("500.00"),
        D("0.00"),
    )
    assert q2["rate"] == D("0.2")  # the contract rate, not expected / basis
    assert q2["implied_basis_usd"] == D("500.00")  # 100 / 0.2
    assert q2["status"] == "matched"
    # Q3: the cap is used up -> nothing expected; 50 settled is an overpayment.
    assert q3["expected_usd"] == D("0.00")
    assert q3["variance_usd"] == D("50.00")
    assert q3["variance_ratio"] is None
    assert q3["status"] == "overpaid"


def test_settled_counts_only_effective_statements_after_supersession(spark, tmp_path):
    """Ingest replaces a superseded statement; reconciliation sees the replacement only."""
    from inference_ledger.ingest import finance

    folder = tmp_path / "finance" / "settlements"
    folder.mkdir(parents=True)
    (folder / "s.csv").write_text(
        "statement_id,supersedes_statement_id,agreement_id,direction,counterparty,period_start,"
        "period_end,reported_basis_amount,rate,amount,currency,statement_date,payment_date,reference\n"
        "S1,,PAY,payable,Partner,2024-01-01,2024-04-01,900.00,0.20,180.00,USD,2024-04-10,,\n"
        "S1-R1,S1,PAY,payable,Partner,2024-01-01,2024-04-01,1000.00,0.20,200.00,USD,2024-05-10,,\n"
        "S1-R2,S1-R1,PAY,payable,Partner,2024-01-01,2024-04-01,1000.00,0.20,199.50,USD,2024-05-20,,\n"
    )
    fx = lake_df(
        spark,
        "fx_rates",
        [
            {"rate_date": date(2024, 4, 10), "currency": "USD", "usd_per_unit": D(1)},
            {"rate_date": date(2024, 5, 10), "currency": "USD", "usd_per_unit": D(1)},
            {"rate_date": date(2024, 5, 20), "currency": "USD", "usd_per_unit": D(1)},
        ],
    )
    records = finance.settlement_records(finance.read_feed(spark, tmp_path, "settlements"), fx)
    status = {r["statement_id"]: r["status"] for r in records.collect()}
    assert status == {"S1": "superseded", "S1-R1": "superseded", "S1-R2": "loaded"}
    loaded = records.filter("status = 'loaded'")
    settlements = lake_df(spark, "settlements", [r.asDict() for r in loaded.collect()])
    terms = [term("PAY", "payable", "revenue:api", "0.20", "2024-01-01")]
    rev = [revenue("r1", "2024-02-01", "api", "1000.00")]
    periods = reconcile.periods_frame(spark, date(2024, 1, 1), date(2024, 4, 1))
    q1 = (
        reconcile.revshare_reconciliation(
            lake_df(spark, "contract_terms", terms),
            lake_df(spark, "revenue_lines", rev),
            settlements,
            periods,
            date(2025, 1, 1),
        )
        .collect()[0]
        .asDict()
    )
    assert q1["settled_usd"] == D("199.50")
    assert q1["statement_ids"] == "S1-R2"
    assert q1["superseded_statement_ids"] == "S1-R1"
    assert q1["statement_basis_usd"] == D("1000.00")
    assert q1["variance_usd"] == D("-0.50")
    assert q1["status"] == "matched"  # within the 1.00 default tolerance


def usage(day, model, inp, cached, out, channel="azure_openai"):
    return {
        "usage_month": day[:7],
        "usage_date": date.fromisoformat(day),
        "channel": channel,
        "project_id": "p",
        "model": model,
        "batch": False,
        "service_tier": "default",
        "input_tokens": inp,
        "input_cached_tokens": cached,
        "output_tokens": out,
        "num_model_requests": 1,
        "source_file": "usage.json",
    }


def price(model, token_type, unit_price, start, end=None, channel="azure_openai", currency="USD"):
    return {
        "channel": channel,
        "model": model,
        "token_type": token_type,
        "unit_tokens": 1_000_000,
        "unit_price": D(unit_price),
        "currency": currency,
        "effective_from": date.fromisoformat(start),
        "effective_to": date.fromisoformat(end) if end else None,
        "source_file": "prices.csv",
    }


def test_receivable_estimate_from_usage_and_the_end_of_its_terms(spark):
    """The partner's payments end on 2026-04-27 (exclusive): no expectation from that day on,
    and the usage x price-sheet estimate stops there too."""
    terms = [term("RCV", "receivable", "reported", "0.20", "2026-01-01", "2026-04-27")]
    stm = [
        statement("R1", "RCV", "receivable", "2026-01-01", "2026-04-01", "200.00", basis="1000.00"),
        statement("R2", "RCV", "receivable", "2026-04-01", "2026-04-27", "50.00", basis="250.00"),
    ]
    use = [
        # 2026-Q1 at the old price: (1.0M-0.2M) x 2.00 + 0.2M x 0.50 + 0.5M x 8.00 = 5.70
        usage("2026-03-15", "m", 1_000_000, 200_000, 500_000),
        # new price from 2026-04-01: 3M x 1.00 + 1M x 0.25 + 0 x 4.00 = 3.25 (3M uncached)
        usage("2026-04-26", "m", 4_000_000, 1_000_000, 0),
        usage("2026-04-27", "m", 9_000_000, 0, 9_000_000),  # terms ended: not counted
        usage("2026-05-10", "m", 9_000_000, 0, 9_000_000),  # not counted
        usage("2026-04-20", "unpriced", 123, 23, 7),  # no price: 123 + 7 tokens left out
        usage("2026-04-20", "m", 5_000_000, 0, 0, channel="openai"),  # first party: not resale
    ]
    sheet = [
        price("m", "input", "2.00", "2026-01-01", "2026-04-01"),
        price("m", "cached_input", "0.50", "2026-01-01", "2026-04-01"),
        price("m", "output", "8.00", "2026-01-01", "2026-04-01"),
        price("m", "input", "1.00", "2026-04-01"),
        price("m", "cached_input", "0.25", "2026-04-01"),
        price("m", "output", "4.00", "2026-04-01"),
        price("m", "input", "0.01", "2026-01-01", channel="openai"),
    ]
    periods = reconcile.periods_frame(spark, date(2026, 1, 1), date(2026, 10, 1))
    df = reconcile.revshare_reconciliation(
        lake_df(spark, "contract_terms", terms),
        lake_df(spark, "revenue_lines", []),
        lake_df(spark, "settlements", stm),
        periods,
        date(2026, 11, 27),
        lake_df(spark, "usage_facts", use),
        lake_df(spark, "prices", sheet),
    )
    got = by_key([r.asDict() for r in df.collect()], "period_label")
    assert set(got) == {"2026-Q1", "2026-Q2"}  # nothing expected from 2026-Q3 on
    q1, q2 = got["2026-Q1"], got["2026-Q2"]
    assert q1["usage_estimate_usd"] == D("5.70")
    assert q1["usage_estimate_variance_usd"] == D("994.30")  # 1000 reported - 5.70
    assert q1["usage_estimate_variance_ratio"] == D("174.4385964912")
    assert q1["usage_unpriced_tokens"] == 0
    assert q2["usage_estimate_usd"] == D("3.25")
    assert q2["usage_unpriced_tokens"] == 130
    assert q2["basis_usd"] == D("250.00")
    assert (q2["expected_usd"], q2["settled_usd"], q2["status"]) == (
        D("50.00"),
        D("50.00"),
        "matched",
    )
    assert q2["payment_due_date"] == date(2026, 7, 31)
    # A statement for a period after the end of the terms is unexpected, not reconciled.
    late = [*stm, statement("R3", "RCV", "receivable", "2026-07-01", "2026-10-01", "5.00")]
    df = reconcile.revshare_reconciliation(
        lake_df(spark, "contract_terms", terms),
        lake_df(spark, "revenue_lines", []),
        lake_df(spark, "settlements", late),
        periods,
        date(2026, 11, 27),
        lake_df(spark, "usage_facts", use),
        lake_df(spark, "prices", sheet),
    )
    q3 = by_key([r.asDict() for r in df.collect()], "period_label")["2026-Q3"]
    assert (q3["status"], q3["expected_usd"], q3["usage_estimate_usd"]) == (
        "unexpected_settlement",
        None,
        None,
    )


def _adjust(spark, recomputed, frozen_rows, pairs, changed=()):
    periods = reconcile.periods_frame(spark, date(2024, 1, 1), date(2025, 1, 1))
    return [
        r.asDict()
        for r in reconcile.prior_period_adjustments(
            recomputed,
            local_frame(spark, frozen_rows, recomputed.schema),
            local_frame(spark, pairs, "target_period string, corrected_period string"),
            periods,
            local_frame(spark, list(changed), "target_period string, source string, entry string"),
        ).collect()
    ]


def test_prior_period_adjustment_posts_recomputed_minus_closed(spark):
    terms = [term("PAY", "payable", "revenue:api", "0.20", "2024-01-01")]
    rev = [
        revenue("r1", "2024-02-01", "api", "1000.00"),
        revenue("r2", "2024-05-01", "api", "2000.00"),
    ]
    stm = [
        statement("S1", "PAY", "payable", *Q1, "200.00"),
        statement("S2", "PAY", "payable", *Q2, "400.00"),
    ]
    closed_rows, _, _ = run(spark, terms, rev, stm, end=date(2024, 10, 1))
    frozen_q1 = [r for r in closed_rows if r["period_label"] == "2024-Q1"]
    # Late: a Q1 revenue entry and a statement replacing S1.
    r1 = statement("S1-R1", "PAY", "payable", *Q1, "250.00")
    r1["supersedes_statement_id"] = "S1"
    late_rev = [*rev, revenue("late-1", "2024-03-30", "api", "500.00")]
    late_stm = [r1, stm[1]]
    _, _, recomputed = run(spark, terms, late_rev, late_stm, end=date(2024, 10, 1))
    recomputed = recomputed.persist()  # as steps/reconcile.py hands it over
    changed = [
        ("2024-Q2", "finance.revenue", "finance/revenue/late.csv (new)"),
        ("2024-Q2", "finance.settlements", "finance/settlements/s.csv (changed)"),
        ("2024-Q2", "usage", "usage/azure_openai/2024-03-30/page-0001.json (new)"),
    ]
    (adj,) = _adjust(spark, recomputed, frozen_q1, [("2024-Q2", "2024-Q1")], changed)
    assert adj["period_label"] == "2024-Q2" and adj["is_adjustment"] is True
    assert adj["adjustment_of_period"] == "2024-Q1"
    assert (adj["basis_usd"], adj["expected_usd"], adj["settled_usd"]) == (
        D("500.00"),
        D("100.00"),
        D("50.00"),
    )
    assert adj["variance_usd"] == D("-50.00")
    assert adj["implied_basis_usd"] == D("250.00")  # 1250 - 1000
    assert adj["basis_entry_count"] == 1
    assert adj["rate"] == D("0.2")
    # Recomputed Q1: expected 300, settled 250 -> underpaid after the adjustment.
    assert adj["status"] == "underpaid"
    assert adj["statement_ids"] == "S1-R1"
    assert adj["superseded_statement_ids"] == "S1"
    assert adj["adjustment_reason"] == (
        "2024-Q1: basis +500.00, expected +100.00, settled +50.00; "
        "statements now S1-R1 (closed: S1)"
    )
    # Usage does not move a revenue-basis agreement's figures, so it is not named.
    assert adj["adjustment_inputs"] == (
        "finance/revenue/late.csv (new); finance/settlements/s.csv (changed)"
    )
    assert adj["cap_used_usd"] is None and adj["tolerance_usd"] is None

    # The summary books the adjustment in the open quarter and says how much of it it is.
    spend = local_frame(
        spark, [], "usage_date date, workload string, billed_cost_usd decimal(38,10)"
    )
    periods = reconcile.periods_frame(spark, date(2024, 4, 1), date(2024, 7, 1))
    q2_rows = recomputed.filter("period_label = '2024-Q2'").unionByName(
        local_frame(spark, [adj], recomputed.schema)
    )
    q2 = summary.quarterly_summary(periods, spend, q2_rows).collect()[0].asDict()
    assert q2["revshare_paid_usd"] == D("450.00")  # 400 + 50
    assert q2["revshare_paid_adjustment_usd"] == D("50.00")
    assert q2["implied_revenue_usd"] == D("2250.00")
    assert q2["revshare_received_adjustment_usd"] == D("0")

    # Closed figures plus adjustments add up to the recomputed ones; a further change to Q1
    # after Q2 (holding the adjustment) is closed posts only the new difference, in Q3.
    frozen_q2 = [r for r in closed_rows if r["period_label"] == "2024-Q2"] + [adj]
    none = _adjust(
        spark, recomputed, frozen_q1 + frozen_q2, [("2024-Q3", "2024-Q1"), ("2024-Q3", "2024-Q2")]
    )
    assert none == []
    _, _, again = run(
        spark,
        terms,
        [*late_rev, revenue("late-2", "2024-01-02", "api", "100.00")],
        late_stm,
        end=date(2024, 10, 1),
    )
    (q3,) = _adjust(
        spark, again, frozen_q1 + frozen_q2, [("2024-Q3", "2024-Q1"), ("2024-Q3", "2024-Q2")]
    )
    assert (q3["period_label"], q3["adjustment_of_period"]) == ("2024-Q3", "2024-Q1,2024-Q2")
    assert (q3["basis_usd"], q3["expected_usd"], q3["settled_usd"]) == (
        D("100.00"),
        D("20.00"),
        D("0E-10"),
    )
    assert q3["adjustment_reason"] == (
        "2024-Q1: basis +600.00, expected +120.00, settled +50.00; "
        "statements now S1-R1 (closed: S1); "
        "2024-Q2: basis -500.00, expected -100.00, settled -50.00 "
        "(closed 2024-Q2 includes an adjustment booked there for earlier periods)"
    )
    assert q3["adjustment_inputs"] is None


def test_spark_fiscal_label_is_the_rule_of_periods(spark):
    """summary.fiscal_label (Spark) and periods.fiscal_quarter_label give the same label for
    every month: one rule, FISCAL_YEAR_START_MONTH."""
    from pyspark.sql import functions as F

    from inference_ledger.periods import fiscal_quarter_label, months_between

    months = months_between(date(2023, 1, 1), date(2025, 1, 1))
    df = local_frame(spark, [(m.start,) for m in months], "d date")
    got = {
        r["d"]: r["label"]
        for r in df.select("d", summary.fiscal_label(F.col("d")).alias("label")).collect()
    }
    assert got == {m.start: fiscal_quarter_label(m.start) for m in months}
    assert got[date(2024, 1, 1)] == "FY24-Q3" and got[date(2024, 7, 1)] == "FY25-Q1"
