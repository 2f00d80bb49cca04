"""Calendar and partner-fiscal labels (inference_ledger.periods), exact values."""

from __future__ import annotations

from datetime import date

import pytest

from inference_ledger.periods import Month, Quarter, months_between


@pytest.mark.parametrize(
    ("month", "fiscal_year", "fiscal_quarter", "fiscal_half"),
    [
        ((2023, 7), "FY24", "FY24-Q1", "FY24-H1"),
        ((2023, 12), "FY24", "FY24-Q2", "FY24-H1"),
        ((2024, 1), "FY24", "FY24-Q3", "FY24-H2"),
        ((2024, 3), "FY24", "FY24-Q3", "FY24-H2"),
        ((2024, 4), "FY24", "FY24-Q4", "FY24-H2"),
        ((2024, 6), "FY24", "FY24-Q4", "FY24-H2"),
        ((2024, 7), "FY25", "FY25-Q1", "FY25-H1"),
        ((2099, 12), "FY00", "FY00-Q2", "FY00-H1"),
    ],
)
def test_fiscal_labels_of_a_month(month, fiscal_year, fiscal_quarter, fiscal_half):
    row = Month(*month).row()
    assert (row["fiscal_year_label"], row["fiscal_quarter_label"], row["fiscal_half_label"]) == (
        fiscal_year,
        fiscal_quarter,
        fiscal_half,
    )


def test_calendar_row_of_a_month():
    assert Month(2024, 12).row() == {
        "month_start": date(2024, 12, 1),
        "month_end": date(2025, 1, 1),
        "month_label": "2024-12",
        "quarter_label": "2024-Q4",
        "half_label": "2024-H2",
        "year_label": "2024",
        "fiscal_year_label": "FY25",
        "fiscal_quarter_label": "FY25-Q2",
        "fiscal_half_label": "FY25-H1",
    }


def test_months_agree_with_the_quarterly_summary_fiscal_label():
    # quarterly_summary publishes 2024-Q1 as FY24-Q3 and 2024-Q2 as FY24-Q4.
    assert [Quarter.parse(q).fiscal_label for q in ("2024-Q1", "2024-Q2")] == [
        "FY24-Q3",
        "FY24-Q4",
    ]
    for m in months_between(date(2023, 1, 1), date(2026, 1, 1)):
        row = m.row()
        assert row["fiscal_quarter_label"] == Quarter.of(m.start).fiscal_label
        assert row["quarter_label"] == Quarter.of(m.start).label


def test_months_between_covers_partial_months():
    months = months_between(date(2024, 11, 15), date(2025, 2, 2))
    assert [m.row()["month_label"] for m in months] == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert months_between(date(2024, 1, 1), date(2024, 1, 1)) == []
