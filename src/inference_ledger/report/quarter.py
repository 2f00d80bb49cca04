"""The quarter page (templates/quarter.html.j2) and its CSVs: figures of one calendar quarter
from `marts`, each table with the query that returns it, and the audit behind them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from inference_ledger import close as closing
from inference_ledger.periods import Quarter
from inference_ledger.report import audit
from inference_ledger.report import queries as Q
from inference_ledger.report.explain import explanations
from inference_ledger.report.outlook import OUTLOOK_CSVS, outlook_part
from inference_ledger.report.render import (
    Col,
    dollars_m,
    integer,
    money,
    pct,
    rate,
    sql,
    table,
    write_csv,
)
from inference_ledger.report.summary import SUMMARY_COLS, trend_charts
from inference_ledger.report.templating import render_page

RECON_COLS = [
    Col("Agreement", "agreement_id"),
    Col("Direction", "direction"),
    Col("Counterparty", "counterparty"),
    Col("Adjustment of", "adjustment_of_period"),
    Col("Basis $", "basis_usd", money, True),
    Col("Rate", "rate", rate, True),
    Col("Expected $", "expected_usd", money, True),
    Col("Settled $", "settled_usd", money, True),
    Col("Variance $", "variance_usd", money, True),
    Col("Variance %", "variance_ratio", pct, True),
    Col("Tolerance $", "tolerance_usd", money, True),
    Col("Status", "status"),
]
DETAIL_COLS = [
    Col("Agreement", "agreement_id"),
    Col("Direction", "direction"),
    Col("Adjustment of", "adjustment_of_period"),
    Col("Implied basis (settled / rate) $", "implied_basis_usd", money, True),
    Col("Cap used $", "cap_used_usd", money, True),
    Col("Cap remaining $", "cap_remaining_usd", money, True),
    Col("Payment due", "payment_due_date"),
    Col("Statements", "statement_ids"),
    Col("Replaced statements", "superseded_statement_ids"),
    Col("Statement basis $", "statement_basis_usd", money, True),
    Col("Basis entries", "basis_entry_count", integer, True),
]
CROSS_COLS = [
    Col("Agreement", "agreement_id"),
    Col("Direction", "direction"),
    Col("Adjustment of", "adjustment_of_period"),
    Col("Reported basis $", "basis_usd", money, True),
    Col("Usage x price sheet $", "usage_estimate_usd", money, True),
    Col("Difference $", "usage_estimate_variance_usd", money, True),
    Col("Difference %", "usage_estimate_variance_ratio", pct, True),
    Col("Unpriced tokens", "usage_unpriced_tokens", integer, True),
]
ADJ_OF_COLS = [
    Col("Posted in", "posted_in"),
    Col("Agreement", "agreement_id"),
    Col("Direction", "direction"),
    Col("Basis $", "basis_usd", money, True),
    Col("Expected $", "expected_usd", money, True),
    Col("Settled $", "settled_usd", money, True),
    Col("Variance $", "variance_usd", money, True),
    Col("Status", "status"),
    Col("Reason", "adjustment_reason"),
    Col("Inputs", "adjustment_inputs"),
]
SPEND_MONTH_COLS = [
    Col("Month", "month"),
    Col("Inference spend $", "inference_spend_usd", money, True),
    Col("All billed spend $", "billed_cost_usd", money, True),
    Col("Spend rows", "spend_rows", integer, True),
    Col("Bill status", "month_status"),
]
SPEND_CSV_COLUMNS = [
    "month", "provider", "service_name", "region", "sku", "model_id", "token_direction",
    "workload", "month_status", "billed_cost_usd", "effective_cost_usd", "consumed_quantity",
    "consumed_unit",
]  # fmt: skip
BREAKDOWN_TITLES = {
    "service_name": "Service",
    "region": "Region",
    "model_id": "Model",
    "workload": "Workload",
}
BREAKDOWN_CSV_COLUMNS = [
    "dimension", "value", "value_count", "billed_cost_usd", "inference_spend_usd",
    "share_of_billed",
]  # fmt: skip
UNIT_COST_COLS = [
    Col("Channel", "channel"),
    Col("Model", "model"),
    Col("Tokens", "total_tokens", integer, True),
    Col("Requests", "num_model_requests", integer, True),
    Col("Allocated spend $", "allocated_spend_usd", money, True),
    Col(
        "$ per 1M tokens",
        "cost_per_1m_tokens_usd",
        lambda v: "" if v is None else f"{v:,.4f}",
        True,
    ),
]
EXPLANATION_CSV_COLUMNS = ["agreement_id", "direction", "is_adjustment", "status", "explanation"]
# Every CSV a quarter page writes, linked from its navigation bar.
QUARTER_CSVS = (
    "summary.csv",
    "spend.csv",
    "spend_breakdown.csv",
    "unit_cost.csv",
    "reconciliation.csv",
    "explanations.csv",
    "adjustments_of_period.csv",
    "data_quality.csv",
    "input_files.csv",
    "quarantine.csv",
    *OUTLOOK_CSVS,
)
# Columns shown only when some row of the period has them.
OPTIONAL = ("adjustment_of_period", "cap_used_usd", "cap_remaining_usd", "superseded_statement_ids")


def write_quarter_report(conn, period: str, out_dir: Path) -> Path:
    label = Quarter.parse(period).label  # validated before it reaches a path or a query
    data = _fetch(conn, label)
    folder = out_dir / label
    folder.mkdir(parents=True, exist_ok=True)
    _write_csvs(conn, folder, label, data)
    context = {
        **_page(label, data["row"]),
        "overview": _overview(data, folder),
        **_spend(label, data),
        "outlook": outlook_part(
            conn,
            label,
            "quarter",
            folder,
            data["summary_all"],
            lambda d: Quarter.of(d).label == label,
        ),
        "charts": trend_charts(data["summary_all"], data["variance"], label),
        "charts_sql": [
            sql(Q.SUMMARY_ALL, note="spend, implied revenue, paid, received"),
            sql(Q.VARIANCE_BY_PERIOD, note="variance by period and direction"),
        ],
        **_reconciliation(label, data),
        "dq": audit.data_quality(conn, label, data["dq"]),
        "inputs": audit.inputs(label, data["inputs"], data["quarantine"]),
    }
    path = folder / "index.html"
    path.write_text(render_page("quarter.html.j2", **context), encoding="utf-8")
    return path


def _fetch(conn, label: str) -> dict:
    summary_all = Q.SUMMARY_ALL.run(conn)
    row = next((r for r in summary_all if r["period_label"] == label), None)
    if row is None:
        raise ValueError(f"period {label} has no published figures in marts.quarterly_summary")
    rec = Q.RECONCILIATION.run(conn, label)
    expl = {
        (e["agreement_id"], e["direction"], e["is_adjustment"]): e
        for e in Q.EXPLANATION.run(conn, label)
    }
    return {
        "summary_all": summary_all,
        "row": row,
        "rec": rec,
        "explanations": explanations(rec, expl),
        "adj_of": Q.ADJUSTMENTS_OF.run(conn, label),
        "variance": Q.VARIANCE_BY_PERIOD.run(conn),
        "state": closing.period_status(conn, label),
        "run": next(iter(Q.PERIOD_STATUS.run(conn, label)), None),
        "dq": Q.DQ_RESULTS.run(conn, label),
        "inputs": Q.INPUT_FILES.run(conn, label),
        "quarantine": Q.QUARANTINE.run(conn, label),
        "months": Q.SPEND_MONTHS.run(conn, label),
        "breakdowns": {d: q.run(conn, label) for d, q in Q.SPEND_BREAKDOWNS.items()},
        "unit_cost": Q.UNIT_COST.run(conn, label),
    }


def _write_csvs(conn, folder: Path, label: str, data: dict) -> None:
    """Every CSV of QUARTER_CSVS but the outlook's (outlook_part writes those)."""
    write_csv(folder / "summary.csv", [data["row"]])
    write_csv(folder / "reconciliation.csv", data["rec"])
    write_csv(
        folder / "explanations.csv",
        [{k: e[k] for k in EXPLANATION_CSV_COLUMNS} for e in data["explanations"]],
    )
    write_csv(folder / "adjustments_of_period.csv", data["adj_of"], [c.key for c in ADJ_OF_COLS])
    write_csv(folder / "data_quality.csv", data["dq"], audit.DQ_CSV_COLUMNS)
    write_csv(folder / "input_files.csv", data["inputs"], [c.key for c in audit.INPUT_COLS])
    write_csv(
        folder / "quarantine.csv",
        Q.QUARANTINE_FILES.run(conn, label),
        audit.QUARANTINE_CSV_COLUMNS,
    )
    write_csv(folder / "spend.csv", Q.SPEND_BY_MONTH.run(conn, label), SPEND_CSV_COLUMNS)
    write_csv(
        folder / "spend_breakdown.csv",
        [{"dimension": d, **r} for d, rows in data["breakdowns"].items() for r in rows],
        BREAKDOWN_CSV_COLUMNS,
    )
    write_csv(folder / "unit_cost.csv", data["unit_cost"], [c.key for c in UNIT_COST_COLS])


def _page(label: str, row: dict) -> dict:
    q = Quarter.parse(label)
    return {
        "title": f"Inference Ledger {label}",
        "heading": f"Inference Ledger — {label}",
        "fiscal": row["fiscal_period_label"],
        "start": q.start.isoformat(),
        "end": q.end.isoformat(),
        "nav": [
            {"href": "../index.html", "text": "All periods"},
            {"href": f"../{q.year}/index.html", "text": str(q.year)},
            *({"href": f, "text": f} for f in QUARTER_CSVS),
        ],
    }


def _overview(data: dict, folder: Path) -> dict:
    row, rec = data["row"], data["rec"]
    statuses = Counter(r["status"] for r in rec if not r["is_adjustment"])
    exceptions = sum(n for s, n in statuses.items() if s not in ("matched", "pending"))
    cards = [
        (
            "Inference spend",
            dollars_m(row["inference_spend_usd"]),
            "cloud bill, inference workload",
        ),
        ("Revenue share paid", dollars_m(row["revshare_paid_usd"]), "provider -> partner"),
        ("Implied revenue", dollars_m(row["implied_revenue_usd"]), "paid / rate"),
        ("Revenue share received", dollars_m(row["revshare_received_usd"]), "partner -> provider"),
        ("Net position", dollars_m(row["net_revshare_usd"]), "received - paid"),
        (
            "Reconciliation",
            f"{exceptions} exception{'s' if exceptions != 1 else ''}",
            ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())),
        ),
    ]
    # A month's spend is final or still provisional (the bill may be restated).
    badge = {"final": "ok", "provisional": "prov"}
    return {
        "close": audit.close_state(data["state"]),
        "published": audit.published(data["run"], folder),
        "cards": [{"key": k, "value": v, "detail": d} for k, v, d in cards],
        "months": [
            {
                "class": badge.get(m["month_status"], "none"),
                "text": f"{m['month']} {m['month_status']}",
            }
            for m in data["months"]
        ],
        "adjustments": sum(1 for r in rec if r["is_adjustment"]),
    }


def _spend(label: str, data: dict) -> dict:
    breakdowns = []
    for dimension, rows in data["breakdowns"].items():
        title = BREAKDOWN_TITLES[dimension]
        query = Q.SPEND_BREAKDOWNS[dimension]
        cols = [
            Col(title, "value"),
            Col("Values", "value_count", integer, True),
            Col("Billed spend $", "billed_cost_usd", money, True),
            Col("Inference spend $", "inference_spend_usd", money, True),
            Col("Share of billed", "share_of_billed", pct, True),
        ]
        empty = "No spend published for this quarter."
        breakdowns.append(
            {
                "title": title.lower(),
                "table": table(
                    cols, rows, query=query, table_id=f"breakdown-{dimension}", empty=empty
                ),
                "sql": sql(query, label),
            }
        )
    return {
        "summary": table(SUMMARY_COLS, [data["row"]], query=Q.SUMMARY_PERIOD, table_id="summary"),
        "summary_sql": sql(Q.SUMMARY_PERIOD, label),
        "months": table(
            SPEND_MONTH_COLS, data["months"], query=Q.SPEND_MONTHS, table_id="spend-months"
        ),
        "months_sql": [sql(Q.SPEND_MONTHS, label), sql(Q.SPEND_BY_MONTH, label, note="spend.csv")],
        "breakdown_top": Q.BREAKDOWN_TOP,
        "breakdowns": breakdowns,
        "unit_cost": table(
            UNIT_COST_COLS,
            data["unit_cost"],
            query=Q.UNIT_COST,
            table_id="unit-cost",
            empty="No usage published for this quarter.",
        ),
        "unit_cost_sql": sql(Q.UNIT_COST, label),
    }


def _adj_class(r: dict) -> str:
    return "adjustment" if r.get("is_adjustment") else ""


def _reconciliation(label: str, data: dict) -> dict:
    rec = data["rec"]
    shaded = {"query": Q.RECONCILIATION, "row_class": _adj_class, "optional": OPTIONAL}
    reported = [r for r in rec if r["basis_definition"] == "reported"]
    return {
        "reconciliation": table(RECON_COLS, rec, table_id="reconciliation", **shaded),
        "reconciliation_detail": table(
            DETAIL_COLS, rec, table_id="reconciliation-detail", **shaded
        ),
        "reconciliation_sql": sql(Q.RECONCILIATION, label),
        "cross_check": table(
            CROSS_COLS,
            reported,
            table_id="cross-check",
            empty="No agreement with a reported basis in this period.",
            **shaded,
        ),
        "explanations": {
            "rows": data["explanations"],
            "sql": sql(Q.EXPLANATION, label, note="the arithmetic behind the sentences"),
            "reconciliation_sql": sql(Q.RECONCILIATION, label),
        },
        "adjustments_of": {
            "ever_closed": data["state"] is not None,
            "table": table(
                ADJ_OF_COLS,
                data["adj_of"],
                query=Q.ADJUSTMENTS_OF,
                table_id="adjustments-of",
                empty="None posted.",
            ),
            "close_history": audit.close_history(data["state"]),
            "sql": sql(Q.ADJUSTMENTS_OF, label),
        },
    }
