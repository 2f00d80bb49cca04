"""The index page (templates/index.html.j2): every published quarter open or closed, with its
figures in $M and its exceptions, links to the quarter and year pages written, freshness and
audit by period, and the trend over all quarters."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from inference_ledger import close as closing
from inference_ledger.report import queries as Q
from inference_ledger.report.render import Col, integer, millions, plain, sql, table
from inference_ledger.report.summary import trend_charts
from inference_ledger.report.templating import render_page

FRESHNESS_COLS = [
    Col("Period", "period_label"),
    Col("State", "is_closed", lambda v: "closed" if v else "open"),
    Col("Published at", "published_at", plain),
    Col("By run", "published_by_run_id"),
    Col("As of", "as_of", plain),
    Col("Months final", "months_final", integer, True),
    Col("Months provisional", "months_provisional", integer, True),
    Col("DQ warnings", "dq_warnings", integer, True),
    Col("DQ critical failed", "dq_critical_failed", integer, True),
    Col("Quarantined rows", "quarantined_rows", integer, True),
]
MILLIONS_COLUMNS = (
    "inference_spend_usd",
    "revshare_paid_usd",
    "implied_revenue_usd",
    "revshare_received_usd",
    "net_revshare_usd",
)


def write_index(conn, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = Q.SUMMARY_ALL.run(conn)
    variance = Q.VARIANCE_BY_PERIOD.run(conn)
    years = sorted({r["period_label"][:4] for r in rows})
    context = {
        "title": "Inference Ledger reports",
        "heading": "Inference Ledger — reports",
        "nav": [],
        "quarters": _quarters(conn, rows, variance, out_dir),
        "quarters_sql": [
            sql(Q.SUMMARY_ALL),
            sql(Q.VARIANCE_BY_PERIOD, note="exceptions: rows neither matched nor pending"),
        ],
        "years": [y for y in years if (out_dir / y / "index.html").exists()],
        "freshness": table(
            FRESHNESS_COLS,
            Q.PERIOD_STATUS_ALL.run(conn),
            query=Q.PERIOD_STATUS_ALL,
            table_id="freshness",
            empty="No period published.",
        ),
        "freshness_sql": sql(Q.PERIOD_STATUS_ALL),
        "charts": trend_charts(rows, variance, None) if rows else [],
    }
    path = out_dir / "index.html"
    path.write_text(render_page("index.html.j2", **context), encoding="utf-8")
    return path


def _quarters(conn, rows: list[dict], variance: list[dict], out_dir: Path) -> list[dict]:
    """Each quarter: whether its page was written, open or closed, $M figures, exceptions."""
    exceptions = Counter()
    for v in variance:
        exceptions[v["period_label"]] += v["exceptions"]
    closed = set(closing.closed_labels(conn))
    return [
        {
            "label": r["period_label"],
            "exists": (out_dir / r["period_label"] / "index.html").exists(),
            "fiscal": r["fiscal_period_label"],
            "state": "closed" if r["period_label"] in closed else "open",
            "millions": [millions(r[k]) for k in MILLIONS_COLUMNS],
            "exceptions": exceptions[r["period_label"]],
        }
        for r in rows
    ]
