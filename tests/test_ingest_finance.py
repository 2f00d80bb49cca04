"""Finance feeds on tiny hand-built inputs: conflicts, FX and price-sheet gaps, exact values."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date
from pathlib import Path

import pytest

from inference_ledger import audit
from inference_ledger.ingest import finance
from inference_ledger.ingest import records as R
from inference_ledger.pipeline import prepare
from inference_ledger.sample import generate_landing
from inference_ledger.sample.catalog import price_rows
from inference_ledger.steps.ingest import ingest_landing
from inference_ledger.steps.ingest_finance import checked_fx
from tests.helpers import D, lake_df


def _csv(path: Path, header: str, *lines: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *lines]) + "\n")


def _outcomes(records) -> list[tuple]:
    return sorted(
        (r["status"], r["reason"] or "", r["field"] or "", r["source_file"].rsplit("/", 1)[1])
        for r in records.collect()
    )


@pytest.fixture(scope="module")
def eur_january(spark):
    days = [date(2024, 1, d) for d in range(1, 32)]
    return lake_df(
        spark,
        "fx_rates",
        [
            {"rate_date": d, "currency": "EUR", "usd_per_unit": D("1.1"), "source_file": "f"}
            for d in days
        ],
    )


def test_conflicting_duplicates_revenue_and_fx(spark, tmp_path, eur_january):
    """Same key, same numbers: deduplicated. Same key, other numbers: a higher entry_version
    supersedes; the same version twice, or an FX rate twice, is quarantined for a person."""
    header = "entry_id,entry_version,revenue_date,product_line,amount,currency,description"
    _csv(
        tmp_path / "finance/revenue/a.csv",
        header,
        "e1,1,2024-01-05,api,100.00,USD,v1",
        "e1,3,2024-01-05,api,130.00,USD,v3",
        "e2,1,2024-01-06,api,50.00,EUR,",
    )
    _csv(
        tmp_path / "finance/revenue/b.csv",
        header,
        "e1,3,2024-01-05,api,131.00,USD,v3 again with another amount",
        "e1,2,2024-01-05,api,130.00,USD,v2 with v3's numbers",
        "e2,1,2024-01-06,api,50.00,EUR,same again",
    )
    rev = finance.revenue_records(finance.read_feed(spark, tmp_path, "revenue"), eur_january)
    assert _outcomes(rev) == [
        ("deduplicated", "exact duplicate of the entry version", "", "b.csv"),
        ("loaded", "", "", "a.csv"),
        ("loaded", "", "", "a.csv"),
        (
            "quarantined",
            "conflicting duplicate of the same entry_version",
            "entry_version",
            "b.csv",
        ),
        ("superseded", "a higher entry_version supersedes this one", "", "a.csv"),
        ("superseded", "a higher entry_version supersedes this one", "", "b.csv"),
    ]
    loaded = sorted(
        (r["entry_id"], r["entry_version"], r["amount_usd"])
        for r in rev.filter(rev.status == R.LOADED).collect()
    )
    assert loaded == [("e1", 3, D("130.00")), ("e2", 1, D("55.000"))]

    _csv(
        tmp_path / "finance/fx/a.csv",
        "rate_date,currency,usd_per_unit",
        "2024-01-01,EUR,1.10",
        "2024-01-02,EUR,1.11",
    )
    _csv(
        tmp_path / "finance/fx/b.csv",
        "rate_date,currency,usd_per_unit",
        "2024-01-01,EUR,1.10",
        "2024-01-02,EUR,1.12",
    )
    fx = finance.simple_records(
        finance.read_feed(spark, tmp_path, "fx"),
        "fx",
        "fx_rates",
        ["currency", "rate_date"],
        ["usd_per_unit"],
    )
    assert _outcomes(fx) == [
        ("deduplicated", "exact duplicate row", "", "b.csv"),
        ("loaded", "", "", "a.csv"),
        ("loaded", "", "", "a.csv"),
        (
            "quarantined",
            "conflicting duplicate of ['currency', 'rate_date']",
            "currency",
            "b.csv",
        ),
    ]


def test_missing_fx_rate_for_revenue_names_currency_and_date(spark, tmp_path, eur_january):
    _csv(
        tmp_path / "finance/revenue/a.csv",
        "entry_id,entry_version,revenue_date,product_line,amount,currency,description",
        "e1,1,2024-01-31,api,10.00,EUR,",
        "e2,1,2024-02-01,api,10.00,EUR,",
        "e3,1,2024-02-03,api,10.00,GBP,",
        "e4,1,2024-02-03,api,10.00,USD,",
    )
    rev = finance.revenue_records(finance.read_feed(spark, tmp_path, "revenue"), eur_january)
    with pytest.raises(R.InputError) as err:
        checked_fx(rev, "finance/revenue", "currency", "revenue_date")
    assert str(err.value) == (
        "finance/revenue: no FX rate to USD for EUR on 2024-02-01, GBP on 2024-02-03"
    )


def _price(model, token_type, price, start, end=None, channel="azure_openai", currency="USD"):
    return {
        "channel": channel,
        "model": model,
        "token_type": token_type,
        "unit_tokens": 1_000_000,
        "unit_price": D(price),
        "currency": currency,
        "effective_from": date.fromisoformat(start),
        "effective_to": date.fromisoformat(end) if end else None,
        "source_file": "prices.csv",
    }


def _use(day, model, inp, cached, out, channel="azure_openai"):
    return {
        "usage_date": date.fromisoformat(day),
        "channel": channel,
        "model": model,
        "input_tokens": inp,
        "input_cached_tokens": cached,
        "output_tokens": out,
    }


def test_price_sheet_gaps_and_overlaps_name_what_is_missing(spark):
    terms = lake_df(
        spark,
        "contract_terms",
        [
            {"agreement_id": "RCV", "direction": "receivable", "basis": "reported",
             "effective_from": date(2024, 1, 1), "effective_to": date(2024, 3, 1)},
            {"agreement_id": "PAY", "direction": "payable", "basis": "revenue:api",
             "effective_from": date(2023, 1, 1), "effective_to": None},
        ],
    )  # fmt: skip
    prices = [
        # m1: input priced throughout; output only until 2024-01-10 and again from 2024-01-13
        # (a two-day hole); cached_input only in EUR, which the USD estimate cannot use.
        _price("m1", "input", "2.00", "2024-01-01"),
        _price("m1", "output", "8.00", "2024-01-01", "2024-01-10"),
        _price("m1", "output", "6.00", "2024-01-13"),
        _price("m1", "cached_input", "0.50", "2024-01-01", currency="EUR"),
    ]
    usage = [
        _use("2024-01-09", "m1", 100, 0, 10),
        _use("2024-01-10", "m1", 100, 0, 10),
        _use("2024-01-11", "m1", 100, 0, 10),
        _use("2024-01-12", "m1", 100, 0, 0),  # no output tokens: nothing to price
        _use("2024-01-12", "m1", 100, 0, 5),  # a second bucket that day does have some
        _use("2024-01-13", "m1", 100, 40, 10),  # cached tokens, no USD price for them
        _use("2024-01-20", "m2", 100, 0, 10),  # a model missing from the sheet
        _use("2024-01-21", "m2", 100, 0, 10),
        _use("2024-01-23", "m2", 100, 0, 10),
        _use("2024-03-01", "m3", 100, 0, 10),  # after the reported terms end
        _use("2024-01-20", "m4", 100, 0, 10, channel="openai"),  # not the resale channel
    ]
    usage_df = lake_df(spark, "usage_facts", usage)
    prices_df = lake_df(spark, "prices", prices)
    terms_df = terms
    assert finance.price_sheet_errors(prices_df, usage_df, terms_df) == [
        "no USD price for azure_openai m1 cached_input tokens on 2024-01-13",
        "no USD price for azure_openai m1 output tokens on 2024-01-10..2024-01-12",
        "no USD price for azure_openai m2 input tokens on 2024-01-20..2024-01-21, 2024-01-23",
        "no USD price for azure_openai m2 output tokens on 2024-01-20..2024-01-21, 2024-01-23",
    ]
    complete = prices + [
        _price("m1", "output", "7.00", "2024-01-10", "2024-01-13"),
        _price("m1", "cached_input", "0.50", "2024-01-01"),
        *[_price("m2", t, "1.00", "2024-01-01") for t in ("input", "output")],
    ]
    assert finance.price_sheet_errors(lake_df(spark, "prices", complete), usage_df, terms) == []
    overlapping = complete + [_price("m2", "output", "1.50", "2023-12-01", "2024-01-02")]
    assert finance.price_sheet_errors(lake_df(spark, "prices", overlapping), usage_df, terms) == [
        "azure_openai m2 output (USD): prices from 2023-12-01 and 2024-01-01 overlap"
    ]


def test_every_file_balances_with_all_input_faults_on(spark, pg_url, pg_conn, tmp_path):
    """audit.input_files after ingesting generated usage and finance feeds with every input
    fault switched on: per file, read = loaded + deduplicated + superseded + quarantined, and
    per source each outcome is the generator's own count of what it planted. (Billing has its
    own control-total tests; it is left out to keep this one small.)"""
    sample = generate_landing(
        tmp_path / "landing",
        start="2024-Q1",
        end="2024-Q1",
        scale=0.1,
        usage_conflicts=True,
        statement_chains=True,
        contract_changes=True,
    )
    assert sample.conflicting_usage_results > 0 and sample.chained_supersessions == 1
    shutil.rmtree(sample.out_dir / "billing")
    run = prepare(sample.out_dir, None, None, "test")
    ctx = run.ctx
    # Its own lake: the session's lake belongs to the end-to-end tests.
    ctx.settings = dataclasses.replace(ctx.settings, lake_uri=str(tmp_path / "lake"))
    try:
        # What the ingest step records, without its data-quality gate (tested elsewhere).
        audit.record_input_files(pg_conn, ctx.run_id, ingest_landing(spark, ctx))
        pg_conn.commit()
    finally:
        run.store.finish()
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT source, path, rows_read, rows_loaded, rows_deduplicated, rows_superseded,"
            " rows_quarantined FROM audit.input_files WHERE run_id = %s",
            (ctx.run_id,),
        )
        files = cur.fetchall()
    landed = {str(p) for p in sample.out_dir.rglob("*") if p.is_file()}
    assert {f[1] for f in files} == landed
    assert [f for f in files if f[2] != sum(f[3:])] == []
    by_source: dict[str, tuple[int, ...]] = {}
    for source, _, *counts in files:
        total = by_source.get(source, (0,) * 5)
        by_source[source] = tuple(a + b for a, b in zip(total, counts, strict=True))
    conflicting = sample.conflicting_usage_results
    redelivered = sample.usage_results_written - sample.usage_results - conflicting
    versions = sample.superseded_revenue_versions
    fx_rows = by_source["finance.fx"][0]
    # (read, loaded, deduplicated, superseded, quarantined)
    assert by_source == {
        "usage": (sample.usage_results_written, sample.usage_results, redelivered, conflicting, 0),
        "finance.revenue": (sample.revenue_rows, sample.revenue_rows - versions, 0, versions, 0),
        "finance.settlements": (sample.settlement_rows, 2, 0, sample.superseding_statements, 0),
        "finance.contracts": (3, 3, 0, 0, 0),
        "finance.prices": (len(price_rows()), len(price_rows()), 0, 0, 0),
        "finance.fx": (fx_rows, fx_rows, 0, 0, 0),
    }
    # 2024-Q1 with a mid-quarter change: statement, its wrong correction, the final one.
    assert (sample.settlement_rows, sample.superseding_statements) == (5, 3)
