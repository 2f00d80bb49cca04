"""The same charges delivered as Azure EA, Azure MCA and FOCUS give the same spend mart."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from inference_ledger.ingest import billing, exports
from inference_ledger.ingest import records as R
from inference_ledger.sample import SCENARIO_QUARTERS, generate_landing
from inference_ledger.sample.billing import write_billing
from inference_ledger.sample.scenario import quarter_range
from inference_ledger.sample.sink import Sink
from inference_ledger.transform.spend import inference_spend_daily
from inference_ledger.workload import WorkloadRules
from tests.billing_support import read_billing_rows
from tests.helpers import lake_df


def spend_mart(
    spark, tmp_path, dialect: str, faults: bool = False, parquet: bool = False, ai: bool = False
):
    landing = tmp_path / f"{dialect}-{faults}-{parquet}-{ai}"
    if ai:  # the generator's billing alone, with Azure OpenAI token meters in the fleet
        stats = write_billing(Sink(landing), quarter_range("2024-Q1", "2024-Q1"), 7, 0.1,
                              dialect, faults, parquet, ai_tokens=True)  # fmt: skip
        rejected = stats.rejected_runs
    else:
        rejected = generate_landing(
            landing,
            start="2024-Q1",
            end="2024-Q1",
            scale=0.1,
            billing_dialect=dialect,
            billing_faults=faults,
            billing_parquet=parquet,
        ).rejected_export_runs
    rows, runs = read_billing_rows(spark, exports.discover_runs(landing))
    assert sum(1 for r in runs if r.rejected_reason) == rejected
    fx = lake_df(spark, "fx_rates", [])  # everything is billed in USD
    records = billing.billing_records(rows, fx, WorkloadRules.load()).cache()
    counts = {
        r["status"]: r["n"]
        for r in records.groupBy("status").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    sources = {r["source"] for r in records.select("source").distinct().collect()}
    loaded = records.filter(F.col("status") == R.LOADED)
    counts.update(
        {(R.LOADED, r[0]): r[1] for r in loaded.groupBy("billing_month").count().collect()}
    )
    daily = inference_spend_daily(loaded)
    return sorted(tuple(r) for r in daily.collect()), counts, sources


@pytest.mark.slow
def test_ea_mca_and_focus_exports_of_the_same_charges_agree(spark, tmp_path):
    ea, ea_counts, ea_sources = spend_mart(spark, tmp_path, "ea")
    focus, focus_counts, focus_sources = spend_mart(spark, tmp_path, "focus")
    mca, mca_counts, _ = spend_mart(spark, tmp_path, "mca")
    assert (ea_sources, focus_sources) == ({"billing.azure"}, {"billing.focus"})
    assert ea_counts == focus_counts == mca_counts
    assert ea_counts[R.SUPERSEDED] > 0 and R.QUARANTINED not in ea_counts
    assert ea == focus == mca
    # Row: usage_date, provider, service, region, sku, model_id, token_direction, workload, billed.
    inference = sum(r[8] for r in ea if r[7] == "inference")
    assert inference == SCENARIO_QUARTERS["2024-Q1"].inference_spend_usd


@pytest.mark.slow
def test_generated_faults_are_quarantined_or_rejected_and_totals_hold(spark, tmp_path):
    clean, clean_counts, _ = spend_mart(spark, tmp_path, "focus")
    faulty, counts, _ = spend_mart(spark, tmp_path, "focus", faults=True)
    assert faulty == clean
    # Two unparseable extra rows in one month's final run, plus every row of the rejected re-run.
    assert counts[R.LOADED] == clean_counts[R.LOADED]
    assert counts[R.SUPERSEDED] == clean_counts[R.SUPERSEDED]
    # The rejected run restates March (the month's third run index 2 -> month_index 2).
    assert counts[R.QUARANTINED] == 2 + counts[(R.LOADED, "2024-03")]


@pytest.mark.slow
def test_parquet_exports_give_the_same_spend_as_csv(spark, tmp_path):
    csv_mart, csv_counts, _ = spend_mart(spark, tmp_path, "ea", faults=True)
    pq_mart, pq_counts, _ = spend_mart(spark, tmp_path, "ea", faults=True, parquet=True)
    assert pq_mart == csv_mart
    assert pq_counts == csv_counts


@pytest.mark.slow
def test_focus_13_and_14_and_ai_token_lines_give_the_same_spend(spark, tmp_path):
    ea, ea_counts, _ = spend_mart(spark, tmp_path, "ea", ai=True)
    f13, f13_counts, _ = spend_mart(spark, tmp_path, "focus-1.3", ai=True)
    f14, f14_counts, _ = spend_mart(spark, tmp_path, "focus-1.4", ai=True)
    assert ea_counts == f13_counts == f14_counts and R.QUARANTINED not in ea_counts
    assert ea == f13 == f14
    inference = sum(r[8] for r in ea if r[7] == "inference")
    assert inference == SCENARIO_QUARTERS["2024-Q1"].inference_spend_usd
    # Row: usage_date, provider, service, region, sku, model_id, token_direction, workload, billed.
    assert {(r[2], r[5], r[6], r[7]) for r in ea if r[5] != "(none)"} == {
        ("Azure OpenAI", "gpt-4o-0513", "input", "inference"),
        ("Azure OpenAI", "gpt-4o-0513", "output", "inference"),
    }
