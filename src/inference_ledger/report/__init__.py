"""Period reports a finance reviewer reads: self-contained HTML (inline CSS and SVG, nothing
fetched) + CSV per quarter and per year, and an index. Figures come from `marts` only, each
section printing the query that returns them; data quality and input accounting come from
`audit` (the run that published the period).

    reports/index.html                  every period, open/closed, links
    reports/2024-Q1/index.html + *.csv  one quarter
    reports/2024/index.html + *.csv     one year: the quarters, half-years and the year total

One module per page (quarter, year, index; explain for the quarter's variance explanations,
audit and outlook for its sections), each rendering a Jinja2 template of templates/. This
module is the entry point: which pages to write for a period.
"""

from __future__ import annotations

from pathlib import Path

from inference_ledger.report import queries as Q
from inference_ledger.report.index import write_index
from inference_ledger.report.quarter import QUARTER_CSVS, write_quarter_report
from inference_ledger.report.render import millions, money
from inference_ledger.report.summary import (
    YEAR_RE,
    fetch_reconciliation,
    fetch_summary,
    parse_report_period,
    summary_text,
)
from inference_ledger.report.year import write_year_report

__all__ = [
    "QUARTER_CSVS",
    "fetch_reconciliation",
    "fetch_summary",
    "millions",
    "money",
    "parse_report_period",
    "summary_text",
    "write_index",
    "write_period_report",
    "write_quarter_report",
    "write_reports",
    "write_year_report",
]


def write_period_report(conn, period: str, out_dir: Path) -> Path:
    """One period's page (a quarter `2024-Q1` or a year `2024`) and the index. A quarter's
    report also refreshes its year's page."""
    label = parse_report_period(period)
    out_dir = Path(out_dir)
    if YEAR_RE.match(label):
        path = write_year_report(conn, label, out_dir)
    else:
        path = write_quarter_report(conn, label, out_dir)
        write_year_report(conn, label[:4], out_dir)
    write_index(conn, out_dir)
    return path


def write_reports(conn, out_dir: Path, periods: list[str] | None = None) -> list[Path]:
    """Every given period (default: every published quarter and year), then the index."""
    out_dir = Path(out_dir)
    if periods is None:
        quarters = [r["period_label"] for r in Q.SUMMARY_ALL.run(conn)]
        periods = [*quarters, *sorted({q[:4] for q in quarters})]
    paths = []
    for p in periods:
        label = parse_report_period(p)
        if YEAR_RE.match(label):
            paths.append(write_year_report(conn, label, out_dir))
        else:
            paths.append(write_quarter_report(conn, label, out_dir))
    write_index(conn, out_dir)
    return paths
