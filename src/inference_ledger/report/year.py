"""The year page (templates/year.html.j2) and its summary.csv: a calendar year's quarters and
total in $ millions (the public-figures table), its complete half-years, the exact figures,
the charts and outlook of the year, and each agreement's status by quarter."""

from __future__ import annotations

from pathlib import Path

from inference_ledger.report import queries as Q
from inference_ledger.report.outlook import OUTLOOK_CSVS, outlook_part
from inference_ledger.report.render import Col, dollars_m, sql, table, write_csv
from inference_ledger.report.summary import SUMMARY_COLS, YEAR_RE, trend_charts
from inference_ledger.report.templating import render_page

YEAR_TABLE_COLS = [
    Col("period", "label"),
    Col("inference spend (cloud bill)", "inference_spend_usd", dollars_m, True),
    Col("revenue share paid to partner", "revshare_paid_usd", dollars_m, True),
    Col("implied provider revenue (paid / rate)", "implied_revenue_usd", dollars_m, True),
    Col("revenue share received from partner", "revshare_received_usd", dollars_m, True),
    Col("net (received - paid)", "net_revshare_usd", dollars_m, True),
]


def write_year_report(conn, year: str, out_dir: Path) -> Path:
    if not YEAR_RE.match(year or ""):
        raise ValueError(f"year {year!r} is not like 2024")
    quarters = Q.SUMMARY_YEAR.run(conn, year)
    if not quarters:
        raise ValueError(f"year {year} has no published quarters in marts.quarterly_summary")
    summary_all = Q.SUMMARY_ALL.run(conn)
    folder = out_dir / year
    folder.mkdir(parents=True, exist_ok=True)
    context = {
        "title": f"Inference Ledger {year}",
        "heading": f"Inference Ledger — {year}",
        "year": year,
        "nav": [
            {"href": "../index.html", "text": "All periods"},
            *(
                {"href": f"../{r['period_label']}/index.html", "text": r["period_label"]}
                for r in quarters
            ),
            *({"href": f, "text": f} for f in OUTLOOK_CSVS),
        ],
        **_figures(conn, year, quarters, folder),
        "charts": trend_charts(
            summary_all,
            Q.VARIANCE_BY_PERIOD.run(conn),
            None,
            labels={r["period_label"] for r in quarters},
        ),
        "charts_sql": [sql(Q.SUMMARY_ALL), sql(Q.VARIANCE_BY_PERIOD)],
        "outlook": outlook_part(
            conn, year, "year", folder, summary_all, lambda d: str(d.year) == year
        ),
        "matrix": _status_matrix(conn, year),
    }
    path = folder / "index.html"
    path.write_text(render_page("year.html.j2", **context), encoding="utf-8")
    return path


def _figures(conn, year: str, quarters: list[dict], folder: Path) -> dict:
    """The quarters, the year's total (to date) and complete half-years, in $M and exact;
    written to summary.csv as well."""
    total = next(iter(Q.YEAR_TOTALS.run(conn, year)))
    halves = Q.HALF_YEAR_TOTALS.run(conn, year)
    rows = [{**r, "label": r["period_label"].replace("-Q", " Q")} for r in quarters]
    complete = total["quarters"] == 4
    total_label = year if complete else f"{year} ({total['quarters']} quarters to date)"
    total_row = {**total, "label": total_label}
    half_rows = [
        {**h, "label": h["half_year"].replace("-H", " H")} for h in halves if h["quarters"] == 2
    ]
    write_csv(
        folder / "summary.csv",
        [*rows, total_row, *half_rows],
        ["label", *[c.key for c in YEAR_TABLE_COLS[1:]]],
    )
    return {
        "quarters": table(YEAR_TABLE_COLS, rows, query=Q.SUMMARY_YEAR, table_id="year-quarters"),
        # The quarters and the total as one table, like the public-figures table.
        "total": {
            "sql": Q.YEAR_TOTALS.name,
            "cells": [
                {"numeric": c.numeric, "key": c.key, "text": c.fmt(total_row.get(c.key))}
                for c in YEAR_TABLE_COLS
            ],
        },
        "quarters_sql": [
            sql(Q.SUMMARY_YEAR, year, note="the quarter rows"),
            sql(Q.YEAR_TOTALS, year, note="the total row"),
        ],
        "halves": table(
            YEAR_TABLE_COLS,
            half_rows,
            query=Q.HALF_YEAR_TOTALS,
            table_id="half-years",
            empty="No complete half-year.",
        ),
        "halves_sql": sql(Q.HALF_YEAR_TOTALS, year),
        "exact": table(SUMMARY_COLS, quarters, query=Q.SUMMARY_YEAR, table_id="year-exact"),
        "exact_sql": sql(Q.SUMMARY_YEAR, year),
    }


def _status_matrix(conn, year: str) -> dict:
    """Each agreement and direction (adjustment rows aside) by quarter of the year."""
    of_year = [s for s in Q.STATUS_BY_PERIOD.run(conn) if s["period_label"].startswith(f"{year}-")]
    periods = sorted({s["period_label"] for s in of_year})
    statuses = [s for s in of_year if not s["is_adjustment"]]
    cell = {(s["period_label"], s["agreement_id"], s["direction"]): s["status"] for s in statuses}
    agreements = sorted({(s["agreement_id"], s["direction"]) for s in statuses})
    return {
        "periods": periods,
        "rows": [
            {"agreement_id": a, "direction": d, "statuses": [cell.get((p, a, d)) for p in periods]}
            for a, d in agreements
        ],
        "sql": sql(Q.STATUS_BY_PERIOD, note=f"rows of {year}"),
    }
