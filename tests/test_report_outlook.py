"""The "Margin and outlook" section on hand-built marts: unit margin summed over the quarter,
the burn-down of the quarter's months, the cap gauge with its projected quarter and band, the
forecast band apart from the actuals; its CSVs; and the page as headless Chromium paints it."""

from __future__ import annotations

import subprocess
import tempfile
from datetime import date
from decimal import Decimal as D

import pytest

from inference_ledger.report import QUARTER_CSVS, write_period_report
from tests.test_report import (  # noqa: F401  (db: the module's own database of hand-built marts)
    Page,
    _chromium,
    _chromium_args,
    _insert,
    db,
    png_colours,
)

M = 1_000_000


def _margin(month, channel, tokens, revenue, cost, paid):
    margin = D(revenue) - D(cost) - D(paid)
    return {
        "usage_month": date(2024, month, 1), "channel": channel, "model": "gpt-4o",
        "total_tokens": tokens, "revenue_basis": "first_party_revenue", "revenue_usd": D(revenue),
        "inference_cost_usd": D(cost), "revshare_paid_usd": D(paid), "margin_usd": margin,
        "margin_per_1m_tokens_usd": margin * M / tokens, "allocation_version": 1,
    }  # fmt: skip


def _burn(month, spend, cumulative):
    return {
        "commitment_id": "MACC-1", "month_start": date(2024, month, 1), "counterparty": "Microsoft",
        "term_start": date(2024, 9, 1), "term_end": date(2025, 9, 1), "commitment_usd": D("1000000"),
        "eligible_spend_usd": D(spend), "cumulative_consumed_usd": D(cumulative),
        "remaining_usd": D("1000000") - D(cumulative), "term_elapsed_ratio": D("0.1"),
        "consumed_ratio": D(cumulative) / D("1000000"), "daily_run_rate_usd": D("1000"),
        "days_left_in_term": 200, "projected_consumed_usd": D("900000"),
        "projected_variance_usd": D("-100000"), "projection_status": "shortfall",
        "projection_method": "trailing 3 months", "consumption_basis": "ContractApplied",
    }  # fmt: skip


def _cap(basis, start, projected, early, late):
    return {
        "agreement_id": "PAY", "direction": "payable", "basis_period_label": basis,
        "basis_period_start": start, "cap_usd": D("1000000000"), "cap_used_usd": D("493800000"),
        "cap_remaining_usd": D("506200000"), "basis_expected_usd": D("167800000"),
        "growth_ratio": D("1.2"), "growth_ratio_low": D("1.1"), "growth_ratio_high": D("1.4"),
        "projected_cap_period_label": projected, "projected_cap_period_label_early": early,
        "projected_cap_period_label_late": late, "horizon_end_period_label": "2030-Q4",
        "method": "PROJECTION: the quarterly expected share at the mean growth", "is_projection": True,
    }  # fmt: skip


def _forecast(basis, start, quarter, q_start, low, mid, high):
    return {
        "basis_period_label": basis, "basis_period_start": start, "metric": "inference_spend_usd",
        "period_label": quarter, "period_start": q_start, "horizon_quarters": 1,
        "basis_value_usd": D("1467000000"), "growth_ratio": D("1.3"), "growth_ratio_low": D("1.2"),
        "growth_ratio_high": D("1.5"), "projected_usd": D(mid), "projected_low_usd": D(low),
        "projected_high_usd": D(high), "method": "PROJECTION: mean growth", "is_projection": True,
    }  # fmt: skip


@pytest.fixture(scope="module")
def outlook_page(db, tmp_path_factory):  # noqa: F811
    q3, q4 = date(2024, 7, 1), date(2024, 10, 1)
    with db.cursor() as cur:
        for row in (
            _margin(10, "openai", 2 * M, "100", "30", "20"),
            _margin(11, "openai", M, "60", "20", "12"),
            _margin(10, "azure_openai", M, "5", "10", "0"),
        ):
            _insert(cur, "marts.unit_margin_monthly", row)
        for month, spend, cum in ((9, "1000", "1000"), (10, "2000", "3000"), (11, "3000", "6000"),
                                  (12, "4000", "10000")):  # fmt: skip
            _insert(cur, "marts.commitment_burndown", _burn(month, spend, cum))
        _insert(cur, "marts.cap_projection", _cap("2024-Q4", q4, "2026-Q2", "2026-Q1", "2026-Q4"))
        _insert(cur, "marts.cap_projection", _cap("2024-Q3", q3, "2027-Q1", "2026-Q3", None))
        _insert(cur, "marts.quarterly_forecast",
                _forecast("2024-Q4", q4, "2025-Q1", date(2025, 1, 1), "1760400000", "1907100000", "2200500000"))  # fmt: skip
        _insert(cur, "marts.quarterly_forecast",
                _forecast("2024-Q3", q3, "2024-Q4", q4, "1", "2", "3"))  # fmt: skip
    db.commit()
    out = tmp_path_factory.mktemp("outlook")
    return write_period_report(db, "2024-Q4", out), out


def test_outlook_section_tables_and_csvs(outlook_page, db):  # noqa: F811
    path, out = outlook_page
    page = Page(path.read_text())
    assert [c["text"] for c in page.table("unit-margin")] == [
        "azure_openai", "gpt-4o", "1,000,000", "5.00", "10.00", "0.00", "-5.00", "-5.0000",
        "openai", "gpt-4o", "3,000,000", "160.00", "50.00", "32.00", "78.00", "26.0000",
    ]  # fmt: skip
    burndown = [c["text"] for c in page.table("burndown")]
    assert burndown[:2] == ["MACC-1", "2024-10-01"] and len(burndown) == 3 * 11
    assert burndown[10] == "ContractApplied"  # how the month's spend was measured
    assert "2024-09-01" not in burndown  # September is before the quarter: chart only
    caps = [c["text"] for c in page.table("caps")]
    assert caps[:3] == ["PAY", "payable", "2024-Q4"] and "2026-Q2" in caps and "2027-Q1" not in caps
    text = path.read_text()
    assert "PROJECTION: reached in 2026-Q2 (band 2026-Q1 .. 2026-Q4)." in text
    assert [c["text"] for c in page.table("forecast")] == [
        "inference_spend_usd", "2025-Q1", "2024-Q4", "1,760,400,000.00", "1,907,100,000.00",
        "2,200,500,000.00", "1.3000",
    ]  # fmt: skip
    for chart in ('id="burndown-MACC-1"', 'id="cap-PAY-payable"', 'id="forecast-band"'):
        assert chart in text
    folder = out / "2024-Q4"
    assert {"unit_margin.csv", "commitment_burndown.csv", "cap_projection.csv",
            "forecast.csv"} <= set(QUARTER_CSVS)  # fmt: skip
    margin_csv = (folder / "unit_margin.csv").read_text().splitlines()
    assert margin_csv[0] == (
        "channel,model,total_tokens,revenue_usd,inference_cost_usd,revshare_paid_usd,margin_usd,"
        "margin_per_1m_tokens_usd"
    )
    assert (
        "openai,gpt-4o,3000000,160.0000000000,50.0000000000,32.0000000000,78.0000000000,"
        "26.0000000000"
    ) in margin_csv
    forecast_csv = (folder / "forecast.csv").read_text()
    assert ",1907100000.0000000000," in forecast_csv and ",True" in forecast_csv
    assert len((folder / "commitment_burndown.csv").read_text().splitlines()) == 1 + 4
    year = Page(write_period_report(db, "2024", out).read_text())
    assert [c["text"] for c in year.table("unit-margin")][:4] == [
        "azure_openai", "gpt-4o", "1,000,000", "5.00"
    ]  # fmt: skip


def test_outlook_renders_in_headless_chromium(outlook_page, tmp_path):
    binary = _chromium()
    path, _ = outlook_page
    shot = tmp_path / "outlook.png"
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                *_chromium_args(binary, profile),
                f"--screenshot={shot}",
                "--window-size=1400,9000",
                path.as_uri(),
            ],  # fmt: skip
            capture_output=True,
            timeout=180,
        )
    assert shot.is_file(), proc.stderr.decode(errors="replace")[-2000:]
    _, _, colours = png_colours(shot.read_bytes())
    assert (180, 83, 9) in colours  # cap gauge fill, projection-high bars #b45309
    assert (245, 158, 11) in colours  # projection bars #f59e0b
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [*_chromium_args(binary, profile), "--dump-dom", path.as_uri()],
            capture_output=True,
            timeout=180,
            text=True,
        ).stdout
    assert '<section id="outlook">' in dom
    rendered = Page(dom)
    assert [c["text"] for c in rendered.table("unit-margin")][-1] == "26.0000"
    assert "PROJECTION: reached in 2026-Q2" in dom
