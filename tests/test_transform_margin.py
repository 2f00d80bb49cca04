"""Unit margin (marts.unit_margin_monthly) on a tiny hand-built quarter, exact values: every
allocation ties out to the cent (here: to the 10th place)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from inference_ledger.transform.margin import UNATTRIBUTED, MarginRule, unit_margin_monthly
from inference_ledger.transform.spend import unit_cost_monthly, usage_weights
from tests.helpers import D, lake_df, revenue, statement, term
from tests.test_transform_spend import line, price, usage

M = 1_000_000


def _inputs(spark):
    facts = lake_df(spark, "usage_facts", [
        # January: openai weighs 3 (gpt-4o, $3/1M) : 1 (mini, $1/1M); azure_openai 4 ($2/1M).
        usage("2024-01-10", "openai", "gpt-4o", M, 0),
        usage("2024-01-10", "openai", "mini", M, 0),
        usage("2024-01-10", "azure_openai", "gpt-4o", 2 * M, 0),
        # February: three openai models of equal weight 3; azure_openai weighs 2.
        usage("2024-02-10", "openai", "gpt-4o", M, 0),
        usage("2024-02-10", "openai", "mini", 3 * M, 0),
        usage("2024-02-10", "openai", "nano", M, 0),
        usage("2024-02-10", "azure_openai", "gpt-4o", M, 0),
        # March: no usage at all.
    ])  # fmt: skip
    prices = lake_df(spark, "prices", [
        price("openai", "gpt-4o", "input", "3"), price("openai", "mini", "input", "1"),
        price("openai", "nano", "input", "3"), price("azure_openai", "gpt-4o", "input", "2"),
    ])  # fmt: skip
    billing = lake_df(
        spark, "billing_lines", [line("2024-01-05", "100.00"), line("2024-02-05", "33.00")]
    )
    revenue_lines = lake_df(spark, "revenue_lines", [
        revenue("e1", "2024-01-03", "api", "1000.00"),
        revenue("e2", "2024-01-04", "support", "40.00"),  # first-party, not in the payable basis
        revenue("e3", "2024-02-03", "api", "500.00"),
        revenue("e4", "2024-03-03", "chatgpt_consumer", "500.00"),
    ])  # fmt: skip
    terms = lake_df(spark, "contract_terms", [
        term("PAY", "payable", "revenue:api|chatgpt_consumer", "0.2", "2023-01-01"),
        term("RES", "receivable", "reported", "0.2", "2023-01-01"),
    ])  # fmt: skip
    settlements = lake_df(spark, "settlements", [
        statement("P1", "PAY", "payable", "2024-01-01", "2024-04-01", "300.00"),
        statement("R1", "RES", "receivable", "2024-01-01", "2024-04-01", "100.00", basis="500"),
        # A quarter with no usage of the partner channel: nothing to weigh it by.
        statement("R2", "RES", "receivable", "2024-04-01", "2024-07-01", "5.00", basis="25"),
    ])  # fmt: skip
    return facts, prices, billing, revenue_lines, terms, settlements


def _margin(spark, rule=None, statements=None):
    facts, prices, billing, revenue_lines, terms, settlements = _inputs(spark)
    if statements is not None:
        settlements = lake_df(spark, "settlements", statements)
    unit = unit_cost_monthly(facts, billing, prices)
    weights = usage_weights(facts, prices)
    rows = unit_margin_monthly(unit, weights, revenue_lines, settlements, terms, rule).collect()
    return {(r["usage_month"].month, r["channel"], r["model"]): r.asDict() for r in rows}, unit


def test_unit_margin_allocates_revenue_cost_and_share_exactly(spark):
    got, _ = _margin(spark)
    cols = ("total_tokens", "revenue_usd", "inference_cost_usd", "revshare_paid_usd", "margin_usd",
            "margin_per_1m_tokens_usd")  # fmt: skip
    table = {k: tuple(v[c] for c in cols) for k, v in got.items()}
    assert table == {
        # Jan revenue 1,040 by weight 3:1; P1's 300 spread 1000:500:500 over the quarter's
        # months by basis revenue (150 / 75 / 75), January's 150 by 3:1; cost 100 by 3:1:4.
        (1, "openai", "gpt-4o"): (M, D("780"), D("37.5"), D("112.5"), D("630"), D("630")),
        (1, "openai", "mini"): (M, D("260"), D("12.5"), D("37.5"), D("210"), D("210")),
        # R1's 100 by the partner channel's usage weight per month, 4:2.
        (1, "azure_openai", "gpt-4o"): (2 * M, D("66.6666666667"), D("50"), D("0"), D("16.6666666667"), D("8.3333333334")),
        # Feb 500 in thirds: each share is 0.333333333333, so each part 166.6666666665 and the
        # residual 0.0000000005 to the first of the tied largest; cost 33 by 3:3:3:2.
        (2, "openai", "gpt-4o"): (M, D("166.6666666670"), D("9"), D("25"), D("132.6666666670"), D("132.6666666670")),
        (2, "openai", "mini"): (3 * M, D("166.6666666665"), D("9"), D("25"), D("132.6666666665"), D("44.2222222222")),
        (2, "openai", "nano"): (M, D("166.6666666665"), D("9"), D("25"), D("132.6666666665"), D("132.6666666665")),
        (2, "azure_openai", "gpt-4o"): (M, D("33.3333333333"), D("6"), D("0"), D("27.3333333333"), D("27.3333333333")),
        # March: revenue and P1's part but no usage: kept on an unattributed row, not dropped.
        (3, "openai", UNATTRIBUTED): (0, D("500"), D("0"), D("75"), D("425"), None),
        # R2: no partner usage in its quarter at all: its first month, unattributed.
        (4, "azure_openai", UNATTRIBUTED): (0, D("5"), D("0"), D("0"), D("5"), None),
    }  # fmt: skip
    assert {k: v["revenue_basis"] for k, v in got.items() if k[1] == "openai"} == {
        k: "first_party_revenue" for k in got if k[1] == "openai"
    }
    assert {v["revenue_basis"] for k, v in got.items() if k[1] == "azure_openai"} == {
        "revshare_received"
    }
    assert {v["allocation_version"] for v in got.values()} == {1}


def test_unit_margin_control_totals_tie_out(spark):
    got, unit = _margin(spark)
    cost = defaultdict(D)
    for r in unit.collect():
        cost[r["usage_month"].month] += r["allocated_spend_usd"]
    sums = defaultdict(D)
    for (month, channel, _), r in got.items():
        sums["cost", month] += r["inference_cost_usd"]
        sums[channel, month] += r["revenue_usd"]
        sums["paid"] += r["revshare_paid_usd"]
        assert (
            r["margin_usd"] == r["revenue_usd"] - r["inference_cost_usd"] - r["revshare_paid_usd"]
        )
    # Allocated cost = the month's inference spend (training excluded) = unit cost's total.
    assert (sums["cost", 1], sums["cost", 2]) == (cost[1], cost[2]) == (D("100.00"), D("33.00"))
    # First-party revenue = the revenue ledger per month; received and paid = the statements.
    assert [sums["openai", m] for m in (1, 2, 3)] == [D("1040.00"), D("500.00"), D("500.00")]
    assert sums["azure_openai", 1] + sums["azure_openai", 2] == D("100.00")
    assert sums["azure_openai", 4] == D("5.00")
    assert sums["paid"] == D("300.00")


def test_unit_margin_product_lines_are_config(spark, tmp_path):
    cfg = tmp_path / "margin.yaml"
    cfg.write_text(
        "version: 7\nfirst_party: {channel: openai, product_lines: [api]}\n"
        "partner: {channel: azure_openai}\n"
    )
    got, _ = _margin(spark, MarginRule.load(cfg))
    # `support` and `chatgpt_consumer` are not first-party model revenue under this rule.
    assert got[(1, "openai", "gpt-4o")]["revenue_usd"] == D("750")
    assert got[(3, "openai", UNATTRIBUTED)]["revenue_usd"] == D("0")
    assert got[(3, "openai", UNATTRIBUTED)]["revshare_paid_usd"] == D("75")
    assert {v["allocation_version"] for v in got.values()} == {7}


@pytest.mark.parametrize(
    "text, message",
    [
        ("version: 1\nfirst_party: {channel: a}\npartner: {channel: a}\n", "must differ"),
        ("version: 1\nfirst_party: {channel: a}\n", "must be named"),
        (
            "version: 1\nfirst_party: {channel: a, product_lines: []}\npartner: {channel: b}\n",
            "product_lines",
        ),  # fmt: skip
        ("first_party: {channel: a}\npartner: {channel: b}\n", "version"),
    ],
)
def test_margin_rule_rejects_bad_config(tmp_path, text, message):
    cfg = tmp_path / "margin.yaml"
    cfg.write_text(text)
    with pytest.raises(ValueError, match=message):
        MarginRule.load(cfg)
    shipped = MarginRule.load()
    assert (shipped.first_party_channel, shipped.partner_channel) == ("openai", "azure_openai")


def test_statement_spreads_within_the_quarter_its_period_starts_in(spark):
    # Period 2024-02-15 .. 2024-05-01: reconciliation counts it in 2024-Q1, so its months are
    # February and March only (basis revenue 500 : 500), never April. An agreement without
    # terms weighs its months by the usage of its channel: the partner's, only February's.
    got, _ = _margin(spark, statements=[
        statement("P9", "PAY", "payable", "2024-02-15", "2024-05-01", "90.00"),
        statement("X1", "NOTERMS", "receivable", "2024-02-15", "2024-05-01", "7.00"),
    ])  # fmt: skip
    paid = {k: v["revshare_paid_usd"] for k, v in got.items() if v["revshare_paid_usd"]}
    assert paid == {
        (2, "openai", "gpt-4o"): D("15"),
        (2, "openai", "mini"): D("15"),
        (2, "openai", "nano"): D("15"),
        (3, "openai", UNATTRIBUTED): D("45"),
    }
    received = {k: v["revenue_usd"] for k, v in got.items() if k[1] == "azure_openai"}
    assert received == {
        (1, "azure_openai", "gpt-4o"): D("0"),
        (2, "azure_openai", "gpt-4o"): D("7"),
    }
