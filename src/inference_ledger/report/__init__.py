"""Period reports a finance reviewer reads: self-contained HTML (inline CSS and SVG, nothing
fetched) + CSV per quarter and per year, and an index. Figures come from `marts` only, each
section printing the query that returns them; data quality and input accounting come from
`audit` (the run that published the period).

    reports/index.html                  every period, open/closed, links
    reports/2024-Q1/index.html + *.csv  one quarter
    reports/2024/index.html + *.csv     one year: the quarters, half-years and the year total
"""

from __future__ import annotations

import html
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

from inference_ledger import close as closing
from inference_ledger.periods import Quarter
from inference_ledger.report import queries as Q
from inference_ledger.report.charts import bar_chart
from inference_ledger.report.outlook import OUTLOOK_CSVS, outlook_section
from inference_ledger.report.render import (
    STATUS_MEANING,
    Col,
    card,
    dollars_m,
    integer,
    millions,
    money,
    page,
    pct,
    plain,
    rate,
    ratio_text,
    section,
    sql_block,
    status_pill,
    table,
    write_csv,
)

__all__ = [
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

_YEAR_RE = re.compile(r"^(\d{4})$")
COLOURS = {
    "spend": "#1e3a8a",
    "implied": "#0d9488",
    "paid": "#ea580c",
    "received": "#16a34a",
    "payable": "#ea580c",
    "receivable": "#16a34a",
}

# ---------------------------------------------------------------- data


def fetch_summary(conn) -> list[dict]:
    return Q.SUMMARY_ALL.run(conn)


def fetch_reconciliation(conn, period: str) -> list[dict]:
    return Q.RECONCILIATION.run(conn, Quarter.parse(period).label)


def parse_report_period(value: str) -> str:
    """A quarter (2024-Q1) or a year (2024); anything else is an error naming the value."""
    if _YEAR_RE.match(value or ""):
        return value
    try:
        return Quarter.parse(value).label
    except ValueError:
        raise ValueError(
            f"period {value!r} is neither a calendar quarter like 2024-Q1 nor a year like 2024"
        ) from None


# ---------------------------------------------------------------- summary columns

SUMMARY_COLS = [
    Col("Period", "period_label"),
    Col("Partner fiscal", "fiscal_period_label"),
    Col("Inference spend $", "inference_spend_usd", money, True),
    Col("Revenue share paid $", "revshare_paid_usd", money, True),
    Col("Implied revenue (paid / rate) $", "implied_revenue_usd", money, True),
    Col("Revenue share received $", "revshare_received_usd", money, True),
    Col("Net (received - paid) $", "net_revshare_usd", money, True),
    Col("Spend / implied revenue", "spend_to_implied_revenue_ratio", ratio_text, True),
    Col("Paid: of which prior-period adj. $", "revshare_paid_adjustment_usd", money, True),
    Col("Received: of which prior-period adj. $", "revshare_received_adjustment_usd", money, True),
]

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
DQ_COLS = [
    Col("Suite", "suite"),
    Col("Expectation", "expectation"),
    Col("Column", "column_name"),
    Col("Severity", "severity"),
    Col("Result", "success", lambda v: "passed" if v else "FAILED"),
    Col("Observed", "observed_value"),
]
# The page leaves out which run recorded each result (a rerun that reads nothing new leaves
# the section as it was); data_quality.csv keeps it.
DQ_CSV_COLUMNS = [*(c.key for c in DQ_COLS), "run_id"]
INPUT_COLS = [
    Col("Source", "source"),
    Col("Files", "files", integer, True),
    Col("Rows read", "rows_read", integer, True),
    Col("Loaded", "rows_loaded", integer, True),
    Col("Quarantined", "rows_quarantined", integer, True),
    Col("Superseded", "rows_superseded", integer, True),
    Col("Deduplicated", "rows_deduplicated", integer, True),
    Col("Read by runs", "runs", integer, True),
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
QUARANTINE_COLS = [
    Col("Source", "source"),
    Col("Field", "field"),
    Col("Reason", "reason"),
    Col("Currency", "currency"),
    Col("Rows", "rows", integer, True),
    Col("Amount at stake", "amount", money, True),
    Col("Files", "files", integer, True),
]
QUARANTINE_CSV_COLUMNS = [
    "source", "path", "field", "reason", "currency", "rows", "amount", "run_id",
]  # fmt: skip
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


def _adj_class(r: dict) -> str:
    return "adjustment" if r.get("is_adjustment") else ""


# ---------------------------------------------------------------- charts


def _charts(summary: list[dict], variance: list[dict], highlight: str | None, labels=None) -> str:
    rows = [r for r in summary if labels is None or r["period_label"] in labels]
    cats = [r["period_label"] for r in rows]
    spend = bar_chart(
        "Inference spend vs implied revenue, by quarter ($M)",
        cats,
        [
            ("inference spend", COLOURS["spend"], [r["inference_spend_usd"] for r in rows]),
            ("implied revenue", COLOURS["implied"], [r["implied_revenue_usd"] for r in rows]),
        ],
        unit="$M",
        scale=Decimal(1_000_000),
        label=millions,
        highlight=highlight,
        chart_id="chart-spend",
    )
    flows = bar_chart(
        "Revenue share paid vs received, by quarter ($M)",
        cats,
        [
            ("paid to partner", COLOURS["paid"], [r["revshare_paid_usd"] for r in rows]),
            (
                "received from partner",
                COLOURS["received"],
                [r["revshare_received_usd"] for r in rows],
            ),
        ],
        unit="$M",
        scale=Decimal(1_000_000),
        label=millions,
        highlight=highlight,
        chart_id="chart-flows",
    )
    by = {(v["period_label"], v["direction"]): v["variance_usd"] for v in variance}
    var_vals = [v for v in by.values() if v is not None]
    big = any(abs(v) >= 1_000_000 for v in var_vals)
    var = bar_chart(
        "Variance (settled - expected) by quarter and direction" + (" ($M)" if big else " ($)"),
        cats,
        [(d, COLOURS[d], [by.get((c, d)) for c in cats]) for d in ("payable", "receivable")],
        unit="$M" if big else "$",
        scale=Decimal(1_000_000) if big else Decimal(1),
        label=millions if big else money,
        highlight=highlight,
        chart_id="chart-variance",
    )
    return f'<div class="charts">{spend}{flows}{var}</div>'


# ---------------------------------------------------------------- explanations


def _explain(r: dict, x: dict) -> list[str]:
    """Sentences for one reconciliation row; every figure is a column of `r` (the mart row) or
    of `x` (the explanation query's arithmetic on it)."""
    out: list[str] = []
    if r["is_adjustment"]:
        out.append(
            f"Prior-period adjustment posted into this open period for closed "
            f"{r['adjustment_of_period']}: recomputed figures minus what the closed period "
            f"holds — {r['adjustment_reason']}."
        )
        if r["adjustment_inputs"]:
            out.append(
                "Inputs new, changed or removed since the run that published the closed figures: "
                f"{r['adjustment_inputs']}."
            )
        out.append(
            f"Status {r['status']} is the corrected period's status after the adjustment "
            f"({STATUS_MEANING.get(r['status'], '')})."
        )
        return out
    basis_def = r["basis_definition"] or ""
    if basis_def.startswith("revenue:"):
        lines = ", ".join(basis_def.removeprefix("revenue:").split("|"))
        out.append(
            f"Basis: the revenue ledger's product lines {lines} — "
            f"{integer(r['basis_entry_count']) or '0'} entries (highest version of each, "
            f"refunds included) totalling ${money(r['basis_usd']) or '0.00'}."
        )
    elif basis_def == "reported":
        if r["basis_usd"] is None:
            out.append(f"Basis: as reported by {r['counterparty']} — no statement yet.")
        else:
            out.append(
                f"Basis: as reported by {r['counterparty']} on its statements, "
                f"${money(r['basis_usd'])}."
            )
        if r["usage_estimate_usd"] is not None:
            text = (
                f"Independent estimate (channel azure_openai usage x price sheet, only days the "
                f"terms are in effect): ${money(r['usage_estimate_usd'])}"
            )
            d = r["usage_estimate_variance_usd"]
            if d is not None and money(abs(d)) == "0.00":
                text += "; the reported basis matches it to the cent"
            elif d is not None:
                side = "above" if d > 0 else "below"
                share = pct(r["usage_estimate_variance_ratio"])
                text += f"; the reported basis is ${money(abs(d))} {side} it ({share})"
            if x.get("share_at_usage_estimate_usd") is not None:
                text += (
                    f"; at the rate it implies a share of "
                    f"${money(x['share_at_usage_estimate_usd'])}"
                )
            out.append(text + ".")
            if r["usage_unpriced_tokens"]:
                out.append(
                    f"{integer(r['usage_unpriced_tokens'])} tokens had no USD price in effect "
                    "and are not in the estimate."
                )
    elif r["status"] == "unexpected_settlement":
        out.append("No contract terms are in effect for this agreement in the period.")
    if r["expected_usd"] is not None:
        text = f"Rate {rate(r['rate'])}: expected ${money(r['expected_usd'])}"
        if x.get("cap_effect_usd") and x["cap_effect_usd"] > 0:
            text += (
                f" — capped: ${money(x['uncapped_expected_usd'])} before the cap, "
                f"${money(x['cap_effect_usd'])} over it"
            )
        if r["cap_remaining_usd"] is not None:
            text += (
                f" (cap used to date ${money(r['cap_used_usd'])}, "
                f"remaining ${money(r['cap_remaining_usd'])})"
            )
        out.append(text + ".")
    elif r["rate"] is not None:
        out.append(f"Rate in effect {rate(r['rate'])}.")
    if r["statement_ids"]:
        text = f"Settled ${money(r['settled_usd'])} by statement(s) {r['statement_ids']}"
        if r["superseded_statement_ids"]:
            text += f", which replaced {r['superseded_statement_ids']} (superseded, not counted)"
        out.append(text + ".")
        diff = x.get("statement_basis_difference_usd")
        if basis_def.startswith("revenue:") and diff:
            out.append(
                f"The statements report a basis of ${money(r['statement_basis_usd'])}, "
                f"${money(abs(diff))} {'more' if diff > 0 else 'less'} than the ledger's; at the "
                f"rate that accounts for ${money(x['basis_difference_effect_usd'])} of the "
                "variance."
            )
        arith = x.get("statement_arithmetic_difference_usd")
        if arith:
            out.append(
                f"The statements' amount differs by ${money(arith)} from their own basis at the "
                "contract rate."
            )
    status = r["status"]
    if status == "matched":
        out.append(
            f"Matched: variance ${money(r['variance_usd'])} is within the tolerance of "
            f"${money(r['tolerance_usd'])}."
        )
    elif status in ("underpaid", "overpaid"):
        out.append(
            f"{status.capitalize()}: variance ${money(r['variance_usd'])} "
            f"({pct(r['variance_ratio'])}) exceeds the tolerance of ${money(r['tolerance_usd'])}."
        )
    elif status == "pending":
        out.append(f"Pending: no statement yet; payment is due by {plain(r['payment_due_date'])}.")
    elif status == "missing_settlement":
        out.append(
            f"Missing settlement: no statement, and payment was due by "
            f"{plain(r['payment_due_date'])}."
        )
    elif status == "unexpected_settlement":
        out.append(f"Unexpected settlement of ${money(r['settled_usd'])}.")
    return out


# ---------------------------------------------------------------- quarter


def _close_badge(state: dict | None) -> str:
    if state is None or not state["closed"]:
        reopened = ""
        if state is not None:
            reopened = (
                f" (reopened {plain(state['reopened_at'])} by {html.escape(state['reopened_by'])}: "
                f"{html.escape(state['reopen_reason'] or '')})"
            )
        return f'<span class="badge open">OPEN</span>{reopened}'
    check = (
        '<span class="badge ok">marts match the snapshot</span>'
        if state["snapshot_matches"]
        else '<span class="badge bad">marts differ from the snapshot</span>'
    )
    return (
        f'<span class="badge closed">CLOSED</span> {plain(state["closed_at"])} by '
        f"{html.escape(state['closed_by'])}, snapshot sha256 "
        f"<code>{html.escape(state['snapshot_sha256'][:16])}…</code> {check}"
    )


def _month_badges(months: list[dict]) -> str:
    """Whether each month's spend is final or still provisional (the bill may be restated)."""
    cls = {"final": "ok", "provisional": "prov"}
    return (
        "<p>Spend by month: "
        + " ".join(
            f'<span class="badge {cls.get(m["month_status"], "none")}">'
            f"{html.escape(m['month'])} {html.escape(m['month_status'])}</span>"
            for m in months
        )
        + "</p>"
    )


def write_quarter_report(conn, period: str, out_dir: Path) -> Path:
    label = Quarter.parse(period).label  # validated before it reaches a path or a query
    q = Quarter.parse(label)
    summary_all = Q.SUMMARY_ALL.run(conn)
    row = next((r for r in summary_all if r["period_label"] == label), None)
    if row is None:
        raise ValueError(f"period {label} has no published figures in marts.quarterly_summary")
    rec = Q.RECONCILIATION.run(conn, label)
    expl = {
        (e["agreement_id"], e["direction"], e["is_adjustment"]): e
        for e in Q.EXPLANATION.run(conn, label)
    }
    adj_of = Q.ADJUSTMENTS_OF.run(conn, label)
    variance = Q.VARIANCE_BY_PERIOD.run(conn)
    state = closing.period_status(conn, label)
    run = next(iter(Q.PERIOD_STATUS.run(conn, label)), None)
    run_id = run["published_by_run_id"] if run else None
    dq = Q.DQ_RESULTS.run(conn, label)
    inputs = Q.INPUT_FILES.run(conn, label)
    quarantine = Q.QUARANTINE.run(conn, label)
    months = Q.SPEND_MONTHS.run(conn, label)

    folder = out_dir / label
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "summary.csv", [row])
    write_csv(folder / "reconciliation.csv", rec)
    explanations = []
    for r in rec:
        x = expl.get((r["agreement_id"], r["direction"], r["is_adjustment"]), {})
        explanations.append(
            {
                "agreement_id": r["agreement_id"],
                "direction": r["direction"],
                "is_adjustment": r["is_adjustment"],
                "status": r["status"],
                "explanation": " ".join(_explain(r, x)),
            }
        )
    write_csv(folder / "explanations.csv", explanations)
    write_csv(folder / "adjustments_of_period.csv", adj_of, [c.key for c in ADJ_OF_COLS])
    write_csv(folder / "data_quality.csv", dq, DQ_CSV_COLUMNS)
    write_csv(folder / "input_files.csv", inputs, [c.key for c in INPUT_COLS])
    write_csv(
        folder / "quarantine.csv", Q.QUARANTINE_FILES.run(conn, label), QUARANTINE_CSV_COLUMNS
    )
    write_csv(folder / "spend.csv", Q.SPEND_BY_MONTH.run(conn, label), SPEND_CSV_COLUMNS)
    breakdowns = {d: q.run(conn, label) for d, q in Q.SPEND_BREAKDOWNS.items()}
    write_csv(
        folder / "spend_breakdown.csv",
        [{"dimension": d, **r} for d, rows in breakdowns.items() for r in rows],
        BREAKDOWN_CSV_COLUMNS,
    )
    unit_cost = Q.UNIT_COST.run(conn, label)
    write_csv(folder / "unit_cost.csv", unit_cost, [c.key for c in UNIT_COST_COLS])

    statuses = Counter(r["status"] for r in rec if not r["is_adjustment"])
    exceptions = sum(n for s, n in statuses.items() if s not in ("matched", "pending"))
    adjustments_here = [r for r in rec if r["is_adjustment"]]
    cards = "".join(
        [
            card(
                "Inference spend",
                dollars_m(row["inference_spend_usd"]),
                "cloud bill, inference workload",
            ),
            card("Revenue share paid", dollars_m(row["revshare_paid_usd"]), "provider -> partner"),
            card("Implied revenue", dollars_m(row["implied_revenue_usd"]), "paid / rate"),
            card(
                "Revenue share received",
                dollars_m(row["revshare_received_usd"]),
                "partner -> provider",
            ),
            card("Net position", dollars_m(row["net_revshare_usd"]), "received - paid"),
            card(
                "Reconciliation",
                f"{exceptions} exception{'s' if exceptions != 1 else ''}",
                ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())),
            ),
        ]
    )
    head = (
        f'<p>{_close_badge(state)}</p><p class="muted" id="published">{_published_text(run)}'
        f"{_data_docs_link(run_id, folder)}</p>"
        f'<div class="cards">{cards}</div>{_month_badges(months)}'
    )
    if adjustments_here:
        head += (
            f"<p><strong>{len(adjustments_here)} prior-period adjustment row(s)</strong> are "
            "posted in this period and counted in its paid / received figures (see below).</p>"
        )
    body = [
        section("Overview", head, "overview"),
        section(
            "Quarterly summary",
            table(SUMMARY_COLS, [row], query=Q.SUMMARY_PERIOD, table_id="summary")
            + sql_block(Q.SUMMARY_PERIOD, label),
            "summary",
        ),
        section(
            "Inference spend by month",
            '<p class="muted">A month is <strong>final</strong> when every billing line of its '
            "bill is final (complete export runs); <strong>provisional</strong> spend may still "
            "be restated. By month, provider, service, region, SKU, model and token direction "
            "in spend.csv.</p>"
            + table(SPEND_MONTH_COLS, months, query=Q.SPEND_MONTHS, table_id="spend-months")
            + sql_block(Q.SPEND_MONTHS, label)
            + sql_block(Q.SPEND_BY_MONTH, label, note="spend.csv"),
            "spend-months",
        ),
        section("Spend breakdown", _breakdown_tables(breakdowns, label), "spend-breakdown"),
        section(
            "Unit cost by channel and model",
            '<p class="muted">The quarter\'s inference spend allocated to each model over its '
            "tokens (marts.unit_cost_monthly summed over the quarter's months).</p>"
            + table(
                UNIT_COST_COLS,
                unit_cost,
                query=Q.UNIT_COST,
                table_id="unit-cost",
                empty="No usage published for this quarter.",
            )
            + sql_block(Q.UNIT_COST, label),
            "unit-cost",
        ),
        outlook_section(
            conn, label, "quarter", folder, summary_all, lambda d: Quarter.of(d).label == label
        ),
        section(
            "Charts",
            _charts(summary_all, variance, label)
            + sql_block(Q.SUMMARY_ALL, note="spend, implied revenue, paid, received")
            + sql_block(Q.VARIANCE_BY_PERIOD, note="variance by period and direction"),
            "charts",
        ),
        section(
            "Revenue-share reconciliation",
            '<p class="muted">One row per agreement and direction; prior-period adjustments '
            "(shaded) carry recomputed-minus-closed amounts for the closed period they correct. "
            "Status colours: "
            + " ".join(status_pill(s) for s in STATUS_MEANING)
            + "</p>"
            + table(
                RECON_COLS,
                rec,
                query=Q.RECONCILIATION,
                table_id="reconciliation",
                row_class=_adj_class,
                optional=OPTIONAL,
            )
            + "<h3>Implied basis, cap and statements</h3>"
            + table(
                DETAIL_COLS,
                rec,
                query=Q.RECONCILIATION,
                table_id="reconciliation-detail",
                row_class=_adj_class,
                optional=OPTIONAL,
            )
            + sql_block(Q.RECONCILIATION, label),
            "reconciliation",
        ),
        section(
            "Receivable cross-check: reported basis vs usage x price sheet",
            table(
                CROSS_COLS,
                [r for r in rec if r["basis_definition"] == "reported"],
                query=Q.RECONCILIATION,
                table_id="cross-check",
                row_class=_adj_class,
                optional=OPTIONAL,
                empty="No agreement with a reported basis in this period.",
            )
            + '<p class="muted">The estimate prices channel azure_openai usage with the price '
            "sheet in effect on each usage date (input tokens net of cached, cached input, "
            "output), counting only days the agreement's terms are in effect.</p>",
            "cross-check",
        ),
        section(
            "Variance explanations",
            "".join(
                f"<h3>{html.escape(e['agreement_id'])} · {html.escape(e['direction'])}"
                f"{' · prior-period adjustment' if e['is_adjustment'] else ''} "
                f"{status_pill(e['status'])}</h3><ul class=expl>"
                + "".join(
                    f"<li>{html.escape(s)}</li>"
                    for s in _explain(
                        r, expl.get((r["agreement_id"], r["direction"], r["is_adjustment"]), {})
                    )
                )
                + "</ul>"
                for e, r in zip(explanations, rec, strict=True)
            )
            + sql_block(Q.EXPLANATION, label, note="the arithmetic behind the sentences")
            + sql_block(Q.RECONCILIATION, label),
            "explanations",
        ),
        section(
            "Prior-period adjustments of this period",
            (
                "<p>Late changes to this period, posted as adjustments in later open periods.</p>"
                if state is not None
                else "<p>This period has never been closed: late changes republish it directly.</p>"
            )
            + table(
                ADJ_OF_COLS,
                adj_of,
                query=Q.ADJUSTMENTS_OF,
                table_id="adjustments-of",
                empty="None posted.",
            )
            + _close_history(state)
            + sql_block(Q.ADJUSTMENTS_OF, label),
            "adjustments",
        ),
        section(
            "Data quality behind this period",
            '<p class="muted">The input-file checks of the runs that read the files this '
            "period rests on, and the lake and mart checks of the run that published it.</p>"
            + _dq_summary(conn, label, dq)
            + table(
                DQ_COLS,
                [r for r in dq if not r["success"]],
                query=Q.DQ_RESULTS,
                table_id="dq-failed",
                row_class=lambda r: "fail",
                empty="No check failed.",
            )
            + f"<details><summary>All {len(dq)} checks</summary>"
            + table(DQ_COLS, dq, query=Q.DQ_RESULTS, table_id="dq")
            + "</details>"
            + sql_block(Q.DQ_RESULTS, label),
            "data-quality",
        ),
        section(
            "Inputs and quarantine behind this period",
            '<p class="muted">The input files the published figures rest on, each as counted '
            "by the newest run that read it (a file skipped as unchanged keeps its earlier "
            "reading); counts are of whole files.</p>"
            + table(
                INPUT_COLS,
                inputs,
                query=Q.INPUT_FILES,
                table_id="inputs",
                empty="No input files recorded.",
            )
            + sql_block(Q.INPUT_FILES, label, note="audit, not marts")
            + "<h3>Quarantined rows of this period by source, field, reason and currency</h3>"
            + _quarantine_total(quarantine)
            + table(
                QUARANTINE_COLS,
                quarantine,
                query=Q.QUARANTINE,
                table_id="quarantine",
                empty="No rows quarantined.",
            )
            + sql_block(Q.QUARANTINE, label)
            + sql_block(Q.QUARANTINE_FILES, label, note="quarantine.csv: per file"),
            "inputs",
        ),
    ]
    nav = (
        f'<a href="../index.html">All periods</a><a href="../{q.year}/index.html">{q.year}</a>'
        + "".join(f'<a href="{f}">{f}</a>' for f in QUARTER_CSVS)
    )
    sub = (
        f"{html.escape(row['fiscal_period_label'])} (partner fiscal year, July–June) · "
        f"{q.start.isoformat()} to {q.end.isoformat()} (exclusive)"
    )
    path = folder / "index.html"
    path.write_text(
        page(f"Inference Ledger {label}", f"Inference Ledger — {label}", sub, "".join(body), nav),
        encoding="utf-8",
    )
    return path


def _data_docs_link(run_id: str | None, folder: Path) -> str:
    """A link to the run's Great Expectations Data Docs site, if it was built here."""
    import os

    from inference_ledger.quality.runner import docs_dir
    from inference_ledger.settings import load_settings

    index = docs_dir(load_settings().home, run_id) / "index.html" if run_id else None
    if index is None or not index.exists():
        return ""
    href = Path(os.path.relpath(index, folder.resolve())).as_posix()
    return f' · <a href="{html.escape(href)}">Data Docs of the run</a>'


def _breakdown_tables(breakdowns: dict[str, list[dict]], label: str) -> str:
    """One table per dimension: the largest values, the rest as "(all others)", shares of
    the quarter's billed spend."""
    out = [
        f'<p class="muted">Billed spend of the quarter by dimension: the '
        f"{Q.BREAKDOWN_TOP} largest values, then all others in one row; "
        "<em>other</em> in the workload table is spend the bill does not attribute to "
        "inference or training. All rows in spend_breakdown.csv.</p>"
    ]
    for dimension, rows in breakdowns.items():
        title = BREAKDOWN_TITLES[dimension]
        query = Q.SPEND_BREAKDOWNS[dimension]
        cols = [
            Col(title, "value"),
            Col("Values", "value_count", integer, True),
            Col("Billed spend $", "billed_cost_usd", money, True),
            Col("Inference spend $", "inference_spend_usd", money, True),
            Col("Share of billed", "share_of_billed", pct, True),
        ]
        out.append(f"<h3>By {title.lower()}</h3>")
        out.append(
            table(
                cols,
                rows,
                query=query,
                table_id=f"breakdown-{dimension}",
                empty="No spend published for this quarter.",
            )
            + sql_block(query, label)
        )
    return "".join(out)


def _published_text(run: dict | None) -> str:
    """Which run published the period, when, and as of which date its statuses were judged."""
    if run is None:
        return "No publishing run recorded."
    as_of = run["as_of"].isoformat() if run["as_of"] else "not recorded"
    return (
        f"Published by run <code>{html.escape(run['published_by_run_id'])}</code> at "
        f"{plain(run['published_at'])} ({html.escape(run['command'] or '')}, "
        f"{html.escape(run['run_status'] or '')}); settlement statuses as of "
        f"<strong>{html.escape(as_of)}</strong>; {integer(run['months_final'])} of 3 months final."
    )


def _quarantine_total(quarantine: list[dict]) -> str:
    """The period's quarantined rows and the money at stake, per currency (exact: summed
    here from the rows' numerics, not from the status view's JSON)."""
    rows = sum(int(r["rows"]) for r in quarantine)
    if not rows:
        return ""
    by_currency: dict[str, Decimal] = {}
    for r in quarantine:
        if r["currency"] and r["amount"] is not None:
            by_currency[r["currency"]] = by_currency.get(r["currency"], Decimal(0)) + r["amount"]
    at_stake = ", ".join(f"{c} {money(v)}" for c, v in sorted(by_currency.items()))
    return (
        f'<p id="quarantine-total"><strong>{integer(rows)} rows</strong> quarantined from '
        "this period's inputs"
        + (f", {html.escape(at_stake)} at stake" if at_stake else "")
        + " (not in the figures above).</p>"
    )


def _dq_summary(conn, label: str, dq: list[dict]) -> str:
    """Per suite: checks, passed, failed (critical blocks publishing, warning does not)."""
    if not dq:
        return "<p>No data-quality results recorded for this period.</p>"
    failed = [r for r in dq if not r["success"]]
    crit = [r for r in failed if r["severity"] == "critical"]
    warned = len(failed) - len(crit)
    badge = (
        '<span class="badge ok">all passed</span>'
        if not failed
        else f'<span class="badge bad">{len(failed)} failed ({len(crit)} critical)</span>'
    )
    # Warnings do not block the publish; the failed-checks table below lists each one.
    badge += f' <span class="dq-warnings">{warned} warning{"s" * (warned != 1)}</span>'
    cols = [
        Col("Suite", "suite"),
        Col("Checks", "checks", integer, True),
        Col("Passed", "passed", integer, True),
        Col("Failed: critical", "failed_critical", integer, True),
        Col("Failed: warning", "failed_warning", integer, True),
        Col("Runs", "runs", integer, True),
    ]
    suites = Q.DQ_SUITES.run(conn, label)
    return (
        f"<p>{len(dq)} checks {badge}</p>"
        + table(cols, suites, query=Q.DQ_SUITES, table_id="dq-suites")
        + sql_block(Q.DQ_SUITES, label)
    )


def _close_history(state: dict | None) -> str:
    if not state or not state["events"]:
        return ""
    rows = [
        {
            "event": e["event"],
            "event_at": plain(e["event_at"]),
            "event_by": e["event_by"],
            "reason": e["reason"] or "",
            "snapshot_sha256": (e["snapshot_sha256"] or "")[:16],
        }
        for e in state["events"]
    ]
    cols = [
        Col("Event", "event"),
        Col("At", "event_at"),
        Col("By", "event_by"),
        Col("Reason", "reason"),
        Col("Snapshot sha256 (start)", "snapshot_sha256"),
    ]
    return "<h3>Close history (audit.period_close_events)</h3>" + table(cols, rows)


# ---------------------------------------------------------------- year


YEAR_TABLE_COLS = [
    Col("period", "label"),
    Col("inference spend (cloud bill)", "inference_spend_usd", dollars_m, True),
    Col("revenue share paid to partner", "revshare_paid_usd", dollars_m, True),
    Col("implied provider revenue (paid / rate)", "implied_revenue_usd", dollars_m, True),
    Col("revenue share received from partner", "revshare_received_usd", dollars_m, True),
    Col("net (received - paid)", "net_revshare_usd", dollars_m, True),
]


def write_year_report(conn, year: str, out_dir: Path) -> Path:
    if not _YEAR_RE.match(year or ""):
        raise ValueError(f"year {year!r} is not like 2024")
    quarters = Q.SUMMARY_YEAR.run(conn, year)
    if not quarters:
        raise ValueError(f"year {year} has no published quarters in marts.quarterly_summary")
    total = next(iter(Q.YEAR_TOTALS.run(conn, year)))
    halves = Q.HALF_YEAR_TOTALS.run(conn, year)
    summary_all = Q.SUMMARY_ALL.run(conn)
    variance = Q.VARIANCE_BY_PERIOD.run(conn)
    statuses = [s for s in Q.STATUS_BY_PERIOD.run(conn) if s["period_label"].startswith(f"{year}-")]
    complete = total["quarters"] == 4
    folder = out_dir / year
    folder.mkdir(parents=True, exist_ok=True)

    rows = [{**r, "label": r["period_label"].replace("-Q", " Q")} for r in quarters]
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
    table_html = table(YEAR_TABLE_COLS, rows, query=Q.SUMMARY_YEAR, table_id="year-quarters")
    # The quarters and the total as one table, like the public-figures table.
    total_cells = "".join(
        f'<td{" class=num" if c.numeric else ""} data-col="{c.key}">'
        f"{html.escape(c.fmt(total_row.get(c.key)))}</td>"
        for c in YEAR_TABLE_COLS
    )
    table_html = table_html.replace(
        "</tbody></table>",
        f'<tr class="total" data-sql="sql-year_totals">{total_cells}</tr></tbody></table>',
    )
    matrix_periods = sorted({s["period_label"] for s in statuses})
    agreements = sorted(
        {(s["agreement_id"], s["direction"]) for s in statuses if not s["is_adjustment"]}
    )
    cell = {
        (s["period_label"], s["agreement_id"], s["direction"]): s["status"]
        for s in statuses
        if not s["is_adjustment"]
    }
    matrix = (
        "<table id=status-matrix><thead><tr><th>Agreement</th><th>Direction</th>"
        + "".join(f'<th><a href="../{p}/index.html">{p}</a></th>' for p in matrix_periods)
        + "</tr></thead><tbody>"
        + "".join(
            f"<tr><td>{html.escape(a)}</td><td>{html.escape(d)}</td>"
            + "".join(f"<td>{status_pill(cell.get((p, a, d)))}</td>" for p in matrix_periods)
            + "</tr>"
            for a, d in agreements
        )
        + "</tbody></table>"
    )
    body = [
        section(
            f"{year}: the quarters and the year",
            '<p class="muted">$ millions, one decimal; exact figures in the quarter pages and '
            "in summary.csv.</p>"
            + table_html
            + sql_block(Q.SUMMARY_YEAR, year, note="the quarter rows")
            + sql_block(Q.YEAR_TOTALS, year, note="the total row"),
            "year",
        ),
        section(
            "Half-years",
            table(
                YEAR_TABLE_COLS,
                half_rows,
                query=Q.HALF_YEAR_TOTALS,
                table_id="half-years",
                empty="No complete half-year.",
            )
            + sql_block(Q.HALF_YEAR_TOTALS, year),
            "half-years",
        ),
        section(
            "Exact figures",
            table(SUMMARY_COLS, quarters, query=Q.SUMMARY_YEAR, table_id="year-exact")
            + sql_block(Q.SUMMARY_YEAR, year),
            "exact",
        ),
        section(
            "Charts",
            _charts(summary_all, variance, None, labels={r["period_label"] for r in quarters})
            + sql_block(Q.SUMMARY_ALL)
            + sql_block(Q.VARIANCE_BY_PERIOD),
            "charts",
        ),
        outlook_section(conn, year, "year", folder, summary_all, lambda d: str(d.year) == year),
        section(
            "Reconciliation status by quarter",
            matrix + sql_block(Q.STATUS_BY_PERIOD, note=f"rows of {year}"),
            "status",
        ),
    ]
    nav = (
        '<a href="../index.html">All periods</a>'
        + "".join(
            f'<a href="../{r["period_label"]}/index.html">{r["period_label"]}</a>' for r in quarters
        )
        + "".join(f'<a href="{f}">{f}</a>' for f in OUTLOOK_CSVS)
    )
    sub = "Calendar year; partner fiscal quarters in the quarter pages"
    path = folder / "index.html"
    path.write_text(
        page(f"Inference Ledger {year}", f"Inference Ledger — {year}", sub, "".join(body), nav),
        encoding="utf-8",
    )
    return path


# ---------------------------------------------------------------- index


def write_index(conn, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = Q.SUMMARY_ALL.run(conn)
    variance = Q.VARIANCE_BY_PERIOD.run(conn)
    exceptions = Counter()
    for v in variance:
        exceptions[v["period_label"]] += v["exceptions"]
    closed = set(closing.closed_labels(conn))
    items = []
    for r in rows:
        label = r["period_label"]
        exists = (out_dir / label / "index.html").exists()
        items.append(
            {
                **r,
                "link": label,
                "state": "closed" if label in closed else "open",
                "exceptions": exceptions[label],
                "exists": exists,
            }
        )
    body_rows = "".join(
        "<tr>"
        + (
            f'<td><a href="{i["link"]}/index.html">{i["link"]}</a></td>'
            if i["exists"]
            else f"<td>{i['link']} <span class=muted>(no report written)</span></td>"
        )
        + f"<td>{html.escape(i['fiscal_period_label'])}</td>"
        + f'<td><span class="badge {i["state"]}">{i["state"].upper()}</span></td>'
        + "".join(
            f'<td class="num">{millions(i[k])}</td>'
            for k in (
                "inference_spend_usd",
                "revshare_paid_usd",
                "implied_revenue_usd",
                "revshare_received_usd",
                "net_revshare_usd",
            )
        )
        + f'<td class="num" data-sql="sql-variance_by_period">{i["exceptions"]}</td></tr>'
        for i in items
    )
    years = sorted({r["period_label"][:4] for r in rows})
    year_links = "".join(
        f'<li><a href="{y}/index.html">{y}</a></li>'
        for y in years
        if (out_dir / y / "index.html").exists()
    )
    body = section(
        "Quarters",
        '<div class="tw"><table id="periods" data-sql="sql-summary_all"><thead>'
        "<tr><th>Period</th><th>Partner fiscal</th><th>State</th>"
        "<th class=num>Spend $M</th><th class=num>Paid $M</th><th class=num>Implied revenue $M</th>"
        "<th class=num>Received $M</th><th class=num>Net $M</th><th class=num>Exceptions</th>"
        f"</tr></thead><tbody>{body_rows}</tbody></table></div>"
        + sql_block(Q.SUMMARY_ALL)
        + sql_block(Q.VARIANCE_BY_PERIOD, note="exceptions: rows neither matched nor pending"),
        "quarters",
    ) + section("Years", f"<ul>{year_links or '<li>none written</li>'}</ul>", "years")
    body += section(
        "Freshness and audit by period",
        '<p class="muted">When each quarter was last published, by which run, as of which '
        "date its settlement statuses were judged, how many of its months are final, and the "
        "data-quality warnings and quarantined rows behind it (marts.period_status).</p>"
        + table(
            FRESHNESS_COLS,
            Q.PERIOD_STATUS_ALL.run(conn),
            query=Q.PERIOD_STATUS_ALL,
            table_id="freshness",
            empty="No period published.",
        )
        + sql_block(Q.PERIOD_STATUS_ALL),
        "freshness",
    )
    if rows:
        body += section("Trend", _charts(rows, variance, None), "trend")
    path = out_dir / "index.html"
    path.write_text(
        page(
            "Inference Ledger reports",
            "Inference Ledger — reports",
            "Revenue-share reconciliation and inference spend, by calendar quarter",
            body,
        ),
        encoding="utf-8",
    )
    return path


# ---------------------------------------------------------------- entry points


def write_period_report(conn, period: str, out_dir: Path) -> Path:
    """One period's page (a quarter `2024-Q1` or a year `2024`) and the index. A quarter's
    report also refreshes its year's page."""
    label = parse_report_period(period)
    out_dir = Path(out_dir)
    if _YEAR_RE.match(label):
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
        if _YEAR_RE.match(label):
            paths.append(write_year_report(conn, label, out_dir))
        else:
            paths.append(write_quarter_report(conn, label, out_dir))
    write_index(conn, out_dir)
    return paths


def summary_text(rows: list[dict]) -> str:
    """The quarterly summary as a console table in $M, with the year and half-year roll-ups."""
    head = f"{'period':<9} {'fiscal':<8} {'spend $M':>10} {'paid $M':>9} {'implied rev $M':>15} {'received $M':>12} {'net $M':>9}"
    lines = [head, "-" * len(head)]

    def line(label, fiscal, spend, paid, implied, received, net):
        return (
            f"{label:<9} {fiscal:<8} {millions(spend):>10} {millions(paid):>9} {millions(implied):>15} "
            f"{millions(received):>12} {millions(net):>9}"
        )

    for r in rows:
        lines.append(
            line(
                r["period_label"],
                r["fiscal_period_label"],
                r["inference_spend_usd"],
                r["revshare_paid_usd"],
                r["implied_revenue_usd"],
                r["revshare_received_usd"],
                r["net_revshare_usd"],
            )
        )
    groups: dict[str, list[dict]] = {}
    for r in rows:
        year, q = r["period_label"].split("-Q")
        groups.setdefault(year, []).append(r)
        groups.setdefault(f"{year}-H{1 if int(q) <= 2 else 2}", []).append(r)
    rollups = [(k, v) for k, v in groups.items() if (len(v) == 4 if "-H" not in k else len(v) == 2)]
    if rollups:
        lines.append("-" * len(head))
    for label, rs in sorted(rollups):

        def tot(k, rs=rs):
            vals = [x[k] for x in rs]
            return None if any(v is None for v in vals) else sum(vals, Decimal(0))

        lines.append(
            line(
                label,
                "",
                tot("inference_spend_usd"),
                tot("revshare_paid_usd"),
                tot("implied_revenue_usd"),
                tot("revshare_received_usd"),
                tot("net_revshare_usd"),
            )
        )
    return "\n".join(lines)
