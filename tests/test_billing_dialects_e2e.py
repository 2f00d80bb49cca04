"""The same charges delivered as Azure EA, Azure MCA and FOCUS give the same spend marts."""

from __future__ import annotations

from datetime import date

import pytest

from inference_ledger import lake, steps
from inference_ledger.sample import SCENARIO_QUARTERS, generate_landing
from inference_ledger.settings import Settings


def spend_mart(spark, tmp_path, dialect: str):
    landing = tmp_path / dialect / "landing"
    generate_landing(landing, start="2024-Q1", end="2024-Q1", scale=0.1, billing_dialect=dialect)
    settings = Settings(
        home=tmp_path / dialect / "home", database_url=None, spark_master="local[2]"
    )
    ctx = steps.RunContext(
        run_id=f"run-{dialect}", landing=landing, as_of=date(2026, 11, 27), settings=settings
    )
    accounting = steps.ingest(spark, ctx)
    steps.aggregate(spark, ctx)
    daily = lake.read_run_output(
        spark, settings.lake_dir, ctx.run_id, "marts/inference_spend_daily"
    )
    rows = sorted(tuple(r) for r in daily.collect())
    billing_files = [a for a in accounting if a["source"].startswith("billing")]
    return rows, billing_files


@pytest.mark.slow
def test_ea_mca_and_focus_exports_of_the_same_charges_agree(spark, tmp_path):
    ea, ea_files = spend_mart(spark, tmp_path, "ea")
    focus, focus_files = spend_mart(spark, tmp_path, "focus")
    mca, _ = spend_mart(spark, tmp_path, "mca")
    assert {a["source"] for a in ea_files} == {"billing.azure"}
    assert {a["source"] for a in focus_files} == {"billing.focus"}
    assert (
        sum(a["rows_superseded"] for a in focus_files)
        == sum(a["rows_superseded"] for a in ea_files)
        > 0
    )
    assert ea == focus == mca
    inference = sum(r[6] for r in ea if r[5] == "inference")
    assert inference == SCENARIO_QUARTERS["2024-Q1"].inference_spend_usd
