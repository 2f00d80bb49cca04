"""Spend marts on tiny hand-built inputs, exact values."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from inference_ledger.transform.spend import (
    AllocationRule,
    inference_spend_daily,
    unit_cost_monthly,
)
from tests.helpers import D, lake_df


def line(day, cost, workload="inference", sku="ND96", region="eastus", qty="1", unit="1 Hour"):
    return {
        "billing_month": day[:7], "provider_name": "Microsoft", "billing_account_id": "1", "scope_id": "s",
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
        (date(2024, 1, 2), "Microsoft", "Virtual Machines", "(none)", "ND96", "inference", D("7.00"), D("7.00"), D("1"), "1 Hour"),
        (date(2024, 1, 2), "Microsoft", "Virtual Machines", "eastus", "Hot LRS", "other", D("3.00"), D("3.00"), None, None),
        (date(2024, 1, 2), "Microsoft", "Virtual Machines", "eastus", "ND96", "inference", D("15.00"), D("15.00"), D("5"), "1 Hour"),
    ]  # fmt: skip


def test_unit_cost_token_share_adds_up_to_the_month_exactly(spark):
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
    cfg.write_text("version: 2\nweights: {input: 1, cached_input: 0.5, output: 4}\n")
    rule = AllocationRule.load(cfg)
    got = {r["model"]: r for r in unit_cost_monthly(facts, billing, rule).collect()}
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
    assert AllocationRule.load().output == Decimal(1)
