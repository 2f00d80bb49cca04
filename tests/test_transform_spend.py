"""Spend marts on tiny hand-built inputs, exact values."""

from __future__ import annotations

from datetime import date

import pytest

from inference_ledger.transform.spend import (
    AllocationRule,
    inference_spend_daily,
    unit_cost_monthly,
    unpriced_of,
    unpriced_usage,
    usage_weights,
)
from tests.helpers import D, lake_df


def line(day, cost, workload="inference", sku="ND96", region="eastus", qty="1", unit="1 Hour",
         model=None, direction=None, status=None, month=None, scope="s", provider="Microsoft"):  # fmt: skip
    return {
        "billing_month": month or day[:7], "provider_name": provider, "billing_account_id": "1", "scope_id": scope,
        "model_id": model, "token_direction": direction, "dataset_status": status,
        "usage_date": date.fromisoformat(day), "charge_category": "Usage", "service_name": "Virtual Machines",
        "region_name": region, "sku_description": sku, "consumed_quantity": D(qty), "consumed_unit": unit,
        "billed_cost": D(cost), "effective_cost": D(cost), "billing_currency": "USD", "billed_cost_usd": D(cost),
        "effective_cost_usd": D(cost), "fx_rate": D(1), "workload": workload, "workload_rule": "t", "source_file": "f",
    }  # fmt: skip


def usage(day, channel, model, inp, out, cached=0, requests=1):
    return {
        "usage_month": day[:7], "usage_date": date.fromisoformat(day), "channel": channel, "model": model,
        "input_tokens": inp, "input_cached_tokens": cached, "output_tokens": out, "num_model_requests": requests,
        "source_file": "u",
    }  # fmt: skip


def test_daily_spend_groups_and_keeps_quantities_only_in_one_unit(spark):
    rows = [
        line("2024-01-02", "10.25", qty="2"),
        line("2024-01-02", "4.75", qty="3"),
        line("2024-01-02", "1.00", sku="Hot LRS", workload="other", unit="1 GB/Month", qty="5"),
        line("2024-01-02", "2.00", sku="Hot LRS", workload="other", unit="10 GB/Month", qty="1"),
        line("2024-01-02", "7.00", region=None),
    ]
    got = sorted(
        tuple(r) for r in inference_spend_daily(lake_df(spark, "billing_lines", rows)).collect()
    )
    assert got == [
        (date(2024, 1, 2), "Microsoft", "Virtual Machines", "(none)", "ND96", "(none)", "(none)", "inference", D("7.00"), D("7.00"), D("1"), "1 Hour", "provisional"),
        (date(2024, 1, 2), "Microsoft", "Virtual Machines", "eastus", "Hot LRS", "(none)", "(none)", "other", D("3.00"), D("3.00"), None, None, "provisional"),
        (date(2024, 1, 2), "Microsoft", "Virtual Machines", "eastus", "ND96", "(none)", "(none)", "inference", D("15.00"), D("15.00"), D("5"), "1 Hour", "provisional"),
    ]  # fmt: skip


def test_unit_cost_token_share_adds_up_to_the_month_exactly(spark):
    # No price sheet: nothing priced, so the month goes by plain token share.
    billing = lake_df(spark, "billing_lines", [
        line("2024-01-05", "60.00"), line("2024-01-20", "40.00"), line("2024-01-20", "999.00", workload="training"),
    ])  # fmt: skip
    facts = lake_df(spark, "usage_facts", [
        usage("2024-01-03", "openai", "gpt-4o", 600, 400, cached=100, requests=3),
        usage("2024-01-04", "openai", "o1", 500, 500),
        usage("2024-01-04", "azure_openai", "gpt-4o", 1000, 0),
    ])  # fmt: skip
    got = {
        (r["channel"], r["model"]): r.asDict() for r in unit_cost_monthly(facts, billing).collect()
    }
    # Three equal token shares of 100.00: 33.3333333333 each, the last 0.0000000001 to the
    # first of the (tied) largest consumers.
    assert {k: v["allocated_spend_usd"] for k, v in got.items()} == {
        ("azure_openai", "gpt-4o"): D("33.3333333334"),
        ("openai", "gpt-4o"): D("33.3333333333"),
        ("openai", "o1"): D("33.3333333333"),
    }
    assert sum(v["allocated_spend_usd"] for v in got.values()) == D("100.00")
    g = got[("openai", "gpt-4o")]
    assert (g["usage_month"], g["input_tokens"], g["input_cached_tokens"], g["output_tokens"], g["total_tokens"],
            g["num_model_requests"]) == (date(2024, 1, 1), 600, 100, 400, 1000, 3)  # fmt: skip
    assert g["cost_per_1m_tokens_usd"] == D("33333.3333333000")


def test_unit_cost_weighted_rule(spark, tmp_path):
    billing = lake_df(spark, "billing_lines", [line("2024-02-01", "50.00")])
    facts = lake_df(spark, "usage_facts", [
        usage("2024-02-01", "openai", "big", 1000, 0, cached=200),   # 800*1 + 200*0.5 = 900
        usage("2024-02-01", "openai", "chatty", 200, 100),           # 200*1 + 100*4  = 600
    ])  # fmt: skip
    cfg = tmp_path / "rule.yaml"
    cfg.write_text(
        "version: 2\nmethod: token_weights\nweights: {input: 1, cached_input: 0.5, output: 4}\n"
    )
    rule = AllocationRule.load(cfg)
    got = {r["model"]: r for r in unit_cost_monthly(facts, billing, rule=rule).collect()}
    assert got["big"]["allocated_spend_usd"] == D("30.00")
    assert got["chatty"]["allocated_spend_usd"] == D("20.00")
    assert got["big"]["cost_per_1m_tokens_usd"] == D("30000")
    assert got["chatty"]["cost_per_1m_tokens_usd"] == D("66666.6666666667")


def test_allocation_rule_rejects_bad_weights(tmp_path):
    cfg = tmp_path / "rule.yaml"
    cfg.write_text("weights: {input: 0, cached_input: 0, output: 0}\n")
    with pytest.raises(ValueError, match="not all 0"):
        AllocationRule.load(cfg)
    cfg.write_text("weights: {input: one}\n")
    with pytest.raises(ValueError, match="must be numbers"):
        AllocationRule.load(cfg)
    cfg.write_text("method: share\n")
    with pytest.raises(ValueError, match="method must be one of price_sheet, token_weights"):
        AllocationRule.load(cfg)
    cfg.write_text("fallback: one\n")
    with pytest.raises(ValueError, match="fallback must be one of month_average, zero"):
        AllocationRule.load(cfg)
    shipped = AllocationRule.load()
    assert (shipped.method, shipped.fallback, shipped.output) == ("price_sheet", "month_average", 1)


def price(channel, model, token_type, unit_price, unit_tokens=1_000_000, start="2024-01-01",
          end=None, currency="USD"):  # fmt: skip
    return {
        "channel": channel, "model": model, "token_type": token_type, "unit_tokens": unit_tokens,
        "unit_price": D(unit_price), "currency": currency, "effective_from": date.fromisoformat(start),
        "effective_to": date.fromisoformat(end) if end else None, "source_file": "p",
    }  # fmt: skip


def allocated(facts, billing, prices=None, rule=None):
    return {
        (r["usage_month"].month, r["channel"], r["model"]): (
            r["allocated_spend_usd"],
            r["cost_per_1m_tokens_usd"],
        )
        for r in unit_cost_monthly(facts, billing, prices, rule).collect()
    }


def test_daily_spend_splits_models_and_token_directions(spark):
    rows = [
        line("2025-05-01", "2.25", sku="Input Tokens", model="solora-jupiter-5", direction="input", unit="Tokens", qty="3000000"),
        line("2025-05-01", "0.75", sku="Input Tokens", model="solora-jupiter-5", direction="input", unit="Tokens", qty="1000000"),
        line("2025-05-01", "2.25", sku="Output Tokens", model="solora-jupiter-5", direction="output", unit="Tokens", qty="500000"),
        line("2025-05-01", "1.00", sku="Input Tokens", model="solora-saturn-4.8", direction="input", unit="Tokens", qty="100000"),
        line("2025-05-01", "4.00", sku="Input Tokens", model=" ", direction="", unit="Tokens", qty="8"),
    ]  # fmt: skip
    got = sorted(
        (
            r["sku"],
            r["model_id"],
            r["token_direction"],
            r["billed_cost_usd"],
            r["consumed_quantity"],
        )
        for r in inference_spend_daily(lake_df(spark, "billing_lines", rows)).collect()
    )
    assert got == [
        ("Input Tokens", "(none)", "(none)", D("4.00"), D("8")),
        ("Input Tokens", "solora-jupiter-5", "input", D("3.00"), D("4000000")),
        ("Input Tokens", "solora-saturn-4.8", "input", D("1.00"), D("100000")),
        ("Output Tokens", "solora-jupiter-5", "output", D("2.25"), D("500000")),
    ]


def test_month_status_is_final_only_when_every_line_of_the_billing_month_is(spark):
    rows = [
        line("2024-01-10", "1", status="final"),
        line("2024-01-11", "1", sku="E4", status="final", scope="other-scope"),
        # A late January charge in the February bill: January's day now carries a February
        # line, and February is not final (the AWS line below), so the day is provisional.
        line("2024-01-10", "1", status="final", month="2024-02"),
        line("2024-02-03", "1", status="final"),
        line("2024-02-04", "1", status="provisional", provider="AWS"),
        line("2024-03-01", "1", status="final"),
        line("2024-03-02", "1", status=None),
    ]
    got = sorted(
        (str(r["usage_date"]), r["sku"], r["billed_cost_usd"], r["month_status"])
        for r in inference_spend_daily(lake_df(spark, "billing_lines", rows)).collect()
    )
    assert got == [
        ("2024-01-10", "ND96", D("2"), "provisional"),
        ("2024-01-11", "E4", D("1"), "final"),
        ("2024-02-03", "ND96", D("1"), "provisional"),
        ("2024-02-04", "ND96", D("1"), "provisional"),
        ("2024-03-01", "ND96", D("1"), "provisional"),
        ("2024-03-02", "ND96", D("1"), "provisional"),
    ]
    all_final = [line("2024-04-01", "1", status="final"), line("2024-04-09", "2", status="final")]
    got = {r["month_status"] for r in inference_spend_daily(lake_df(spark, "billing_lines", all_final)).collect()}  # fmt: skip
    assert got == {"final"}


def test_price_sheet_weights_give_costs_in_the_ratio_of_prices(spark):
    billing = lake_df(spark, "billing_lines", [line("2024-01-05", "100.00")])
    facts = lake_df(spark, "usage_facts", [
        usage("2024-01-03", "openai", "a", 1_000_000, 250_000),  # 2.00 + 2.00 = 4.00 at list
        usage("2024-01-04", "openai", "b", 500_000, 125_000),    # 3.00 + 3.00 = 6.00 at list
    ])  # fmt: skip
    prices = lake_df(spark, "prices", [
        price("openai", "a", "input", "2"), price("openai", "a", "output", "8"),
        # Not in effect in January 2024, and not USD: neither counts.
        price("openai", "a", "input", "100", start="2023-01-01", end="2024-01-01"),
        price("openai", "b", "input", "1", currency="EUR"),
        # b is priced per 1K tokens, at 3x a's prices.
        price("openai", "b", "input", "0.006", unit_tokens=1000),
        price("openai", "b", "output", "0.024", unit_tokens=1000),
    ])  # fmt: skip
    got = allocated(facts, billing, prices)
    assert got == {
        (1, "openai", "a"): (D("40.00"), D("32.00")),
        (1, "openai", "b"): (D("60.00"), D("96.00")),
    }
    assert got[(1, "openai", "b")][1] / got[(1, "openai", "a")][1] == D(3)


def test_spend_the_bill_carries_per_model_goes_to_that_model(spark):
    billing = lake_df(spark, "billing_lines", [
        line("2024-01-05", "30.00", model="OpenAI/GPT-4o", direction="input"),
        line("2024-01-05", "70.00"),
        line("2024-01-06", "5.00", model="claude-x", direction="input"),  # no usage: the pool
        line("2024-01-06", "999.00", workload="training", model="o1"),
        line("2024-02-01", "10.00", model="gpt-4o"),
        line("2024-02-01", "6.00"),
    ])  # fmt: skip
    facts = lake_df(spark, "usage_facts", [
        usage("2024-01-03", "azure_openai", "gpt-4o", 1_000_000, 0),  # 2.00 at list
        usage("2024-01-03", "openai", "gpt-4o", 500_000, 0),          # 1.00
        usage("2024-01-03", "openai", "o1", 1_000_000, 0),            # 3.00
        usage("2024-01-03", "openai", "mini", 1_000_000, 0),          # 1.00
        usage("2024-02-03", "azure_openai", "gpt-4o", 1_000_000, 0),
        usage("2024-02-03", "openai", "gpt-4o", 500_000, 0),
    ])  # fmt: skip
    prices = lake_df(spark, "prices", [
        price("azure_openai", "gpt-4o", "input", "2"), price("openai", "gpt-4o", "input", "2"),
        price("openai", "o1", "input", "3"), price("openai", "mini", "input", "1"),
    ])  # fmt: skip
    assert allocated(facts, billing, prices) == {
        # January: gpt-4o's 30.00 split 2:1 across its channels; the other 75.00 (70.00 without
        # a model, 5.00 for a model nobody used) to o1 and mini 3:1.
        (1, "azure_openai", "gpt-4o"): (D("20.00"), D("20.00")),
        (1, "openai", "gpt-4o"): (D("10.00"), D("20.00")),
        (1, "openai", "o1"): (D("56.25"), D("56.25")),
        (1, "openai", "mini"): (D("18.75"), D("18.75")),
        # February: every model is billed directly, so the 6.00 without a model goes to all.
        (2, "azure_openai", "gpt-4o"): (D("10.6666666667"), D("10.6666666667")),
        (2, "openai", "gpt-4o"): (D("5.3333333333"), D("10.6666666666")),
    }


def test_unpriced_usage_falls_back_to_the_month_average_or_zero(spark, tmp_path):
    billing = lake_df(spark, "billing_lines", [line("2024-01-05", "21.00"), line("2024-02-05", "8.00")])  # fmt: skip
    facts = lake_df(spark, "usage_facts", [
        usage("2024-01-03", "openai", "a", 1_000_000, 0),          # 4.00 at list
        usage("2024-01-03", "openai", "c", 500_000, 0),            # no USD price
        usage("2024-01-03", "openai", "d", 1_000_000, 1_000_000),  # input 2.00, output unpriced
        usage("2024-02-03", "openai", "x", 300, 0),                # February: nothing priced
        usage("2024-02-03", "openai", "y", 0, 100),
    ])  # fmt: skip
    prices = lake_df(spark, "prices", [
        price("openai", "a", "input", "4"), price("openai", "d", "input", "2"),
        price("openai", "c", "input", "9", currency="EUR"),
    ])  # fmt: skip
    february = {
        (2, "openai", "x"): (D("6.00"), D("20000")),
        (2, "openai", "y"): (D("2.00"), D("20000")),
    }
    # month_average: the month's priced usage is 6.00 for 2M tokens; c's 0.5M unpriced tokens
    # weigh 1.50, d's 1M unpriced output tokens 3.00 (d: 5.00); 21.00 over 10.50 of weight.
    assert allocated(facts, billing, prices) == {
        (1, "openai", "a"): (D("8.00"), D("8.00")),
        (1, "openai", "c"): (D("3.00"), D("6.00")),
        (1, "openai", "d"): (D("10.00"), D("5.00")),
        **february,
    }
    unpriced = [
        (date(2024, 1, 1), "openai", "c", 500_000),
        (date(2024, 1, 1), "openai", "d", 1_000_000),
        (date(2024, 2, 1), "openai", "x", 300),
        (date(2024, 2, 1), "openai", "y", 100),
    ]
    assert sorted(tuple(r) for r in unpriced_usage(facts, prices).collect()) == unpriced
    # The aggregate step reads the same from the usage weights it has written.
    weights = usage_weights(facts, prices)
    assert sorted(tuple(r) for r in unpriced_of(weights).collect()) == unpriced
    cfg = tmp_path / "rule.yaml"
    cfg.write_text("version: 3\nmethod: price_sheet\nfallback: zero\n")
    assert allocated(facts, billing, prices, AllocationRule.load(cfg)) == {
        (1, "openai", "a"): (D("14.00"), D("14.00")),
        (1, "openai", "c"): (D("0"), D("0")),
        (1, "openai", "d"): (D("7.00"), D("3.50")),
        **february,
    }


def test_months_of_more_than_10_to_the_14_tokens_allocate_exactly(spark):
    # The demo's 2025 months carry ~10^14 tokens: token counts must not pass through the
    # 14-integer-digit weight type (this overflowed before).
    big, small = 150_000_000_000_000, 50_000_000_000_000
    billing = lake_df(spark, "billing_lines", [line("2025-03-05", "1000000.00"), line("2025-04-05", "300.00")])  # fmt: skip
    facts = lake_df(spark, "usage_facts", [
        usage("2025-03-03", "openai", "a", big, 0),                   # priced 1 / 1M: 150M USD
        usage("2025-03-03", "openai", "b", small, 0),                 # no price: month average
        usage("2025-04-03", "openai", "x", big, 0), usage("2025-04-03", "azure_openai", "y", 0, small),
    ])  # fmt: skip
    prices = lake_df(spark, "prices", [price("openai", "a", "input", "1")])
    assert allocated(facts, billing, prices) == {
        # March: b's tokens weigh as a's average priced token: 150M : 50M of value.
        (3, "openai", "a"): (D("750000.00"), D("0.005")),
        (3, "openai", "b"): (D("250000.00"), D("0.005")),
        # April: nothing priced, plain token share (weights in millions of tokens).
        (4, "openai", "x"): (D("225.00"), D("0.0000015")),
        (4, "azure_openai", "y"): (D("75.00"), D("0.0000015")),
    }
