"""The "Margin and outlook" section of the quarter and year pages (templates/outlook.html.j2):
unit margin by channel and model (actuals), the commitment burn-down, the cap gauge with its
projected exhaustion and the forecast band (projections, labelled as such and shown apart).
Figures from `marts` only, each table with its query; one CSV per part."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from markupsafe import Markup

from inference_ledger.report import queries as Q
from inference_ledger.report.charts import bar_chart, gauge
from inference_ledger.report.render import (
    Col,
    dollars_m,
    integer,
    money,
    ratio_text,
    sql,
    table,
    write_csv,
)

OUTLOOK_CSVS = ("unit_margin.csv", "commitment_burndown.csv", "cap_projection.csv", "forecast.csv")


def _per_m(v: Decimal | None) -> str:
    return "" if v is None else f"{v:,.4f}"


MARGIN_COLS = [
    Col("Channel", "channel"),
    Col("Model", "model"),
    Col("Tokens", "total_tokens", integer, True),
    Col("Revenue $", "revenue_usd", money, True),
    Col("Inference cost $", "inference_cost_usd", money, True),
    Col("Rev. share paid $", "revshare_paid_usd", money, True),
    Col("Margin $", "margin_usd", money, True),
    Col("Margin $ per 1M tokens", "margin_per_1m_tokens_usd", _per_m, True),
]
BURNDOWN_COLS = [
    Col("Commitment", "commitment_id"),
    Col("Month", "month_start"),
    Col("Eligible spend $", "eligible_spend_usd", money, True),
    Col("Cumulative $", "cumulative_consumed_usd", money, True),
    Col("Remaining $", "remaining_usd", money, True),
    Col("Term elapsed", "term_elapsed_ratio", ratio_text, True),
    Col("Consumed", "consumed_ratio", ratio_text, True),
    Col("Projected at term end $", "projected_consumed_usd", money, True),
    Col("Projected shortfall (-) / surplus $", "projected_variance_usd", money, True),
    Col("Projection", "projection_status"),
    Col("Measured by", "consumption_basis"),
]
CAP_COLS = [
    Col("Agreement", "agreement_id"),
    Col("Direction", "direction"),
    Col("Basis quarter", "basis_period_label"),
    Col("Cap $", "cap_usd", money, True),
    Col("Used $", "cap_used_usd", money, True),
    Col("Remaining $", "cap_remaining_usd", money, True),
    Col("Growth / quarter", "growth_ratio", ratio_text, True),
    Col("Reached (actual)", "cap_reached_period_label"),
    Col("Projected to be reached", "projected_cap_period_label"),
    Col("Band: earliest", "projected_cap_period_label_early"),
    Col("Band: latest", "projected_cap_period_label_late"),
    Col("Searched to", "horizon_end_period_label"),
]
FORECAST_COLS = [
    Col("Metric", "metric"),
    Col("Quarter", "period_label"),
    Col("Basis quarter", "basis_period_label"),
    Col("Projected low $", "projected_low_usd", money, True),
    Col("Projected $", "projected_usd", money, True),
    Col("Projected high $", "projected_high_usd", money, True),
    Col("Growth / quarter", "growth_ratio", ratio_text, True),
]


# CSV columns: every column the queries return (an empty period still gets a header).
CSV_COLUMNS = {
    "unit_margin": [
        "channel", "model", "total_tokens", "revenue_usd", "inference_cost_usd",
        "revshare_paid_usd", "margin_usd", "margin_per_1m_tokens_usd",
    ],
    "burndown": [
        "commitment_id", "counterparty", "month_start", "term_start", "term_end",
        "commitment_usd", "eligible_spend_usd", "cumulative_consumed_usd", "remaining_usd",
        "term_elapsed_ratio", "consumed_ratio", "daily_run_rate_usd", "days_left_in_term",
        "projected_consumed_usd", "projected_variance_usd", "projection_status",
        "projection_method", "consumption_basis",
    ],
    "caps": [
        "agreement_id", "direction", "basis_period_label", "cap_usd", "cap_used_usd",
        "cap_remaining_usd", "basis_expected_usd", "growth_ratio", "growth_ratio_low",
        "growth_ratio_high", "cap_reached_period_label", "projected_cap_period_label",
        "projected_cap_period_label_early", "projected_cap_period_label_late",
        "horizon_end_period_label", "method", "is_projection",
    ],
    "forecast": [
        "basis_period_label", "metric", "period_label", "horizon_quarters", "basis_value_usd",
        "growth_ratio", "growth_ratio_low", "growth_ratio_high", "projected_low_usd",
        "projected_usd", "projected_high_usd", "method", "is_projection",
    ],
}  # fmt: skip


def _margin_part(rows: list[dict], query: Q.Query, label: str) -> dict:
    return {
        "table": table(
            MARGIN_COLS,
            rows,
            query=query,
            table_id="unit-margin",
            empty="No unit margin published for this period.",
        ),
        "sql": sql(query, label),
    }


def _burndown_part(rows: list[dict], query: Q.Query, label: str, in_period) -> dict:
    charts = []
    for cid in sorted({r["commitment_id"] for r in rows}):
        mine = [r for r in rows if r["commitment_id"] == cid]
        charts.append(
            bar_chart(
                f"Commitment {cid}: consumed and remaining ({mine[0]['counterparty']})",
                [r["month_start"].strftime("%Y-%m") for r in mine],
                [
                    (
                        "cumulative consumed",
                        "#1e3a8a",
                        [r["cumulative_consumed_usd"] for r in mine],
                    ),
                    ("remaining", "#9ca3af", [r["remaining_usd"] for r in mine]),
                ],
                unit="$M",
                scale=Decimal(1_000_000),
                label=dollars_m,
                chart_id=f"burndown-{cid}",
            )  # fmt: skip
        )
    shown = [r for r in rows if in_period(r["month_start"])]
    return {
        # bar_chart escapes every text it draws: its SVG is safe as it is.
        "charts": [Markup(c) for c in charts],
        "table": table(
            BURNDOWN_COLS,
            shown,
            query=query,
            table_id="burndown",
            empty="No commitment in effect in this period.",
        ),
        "sql": sql(query, label),
    }


def _cap_note(r: dict) -> str:
    if r["cap_reached_period_label"]:
        return f"Reached in {r['cap_reached_period_label']} (actual)."
    if r["projected_cap_period_label"]:
        return (
            f"PROJECTION: reached in {r['projected_cap_period_label']} (band "
            f"{r['projected_cap_period_label_early']} .. "
            f"{r['projected_cap_period_label_late'] or 'not within the horizon'})."
        )
    return f"PROJECTION: not reached by {r['horizon_end_period_label'] or 'the term end'}."


def _caps_part(rows: list[dict], query: Q.Query, label: str) -> dict:
    gauges = [
        gauge(
            f"Cap of {r['agreement_id']} ({r['direction']}) as of {r['basis_period_label']}",
            r["cap_used_usd"],
            r["cap_usd"],
            label=dollars_m,
            note=_cap_note(r),
            chart_id=f"cap-{r['agreement_id']}-{r['direction']}",
        )
        for r in rows
    ]
    return {
        # gauge escapes every text it draws: its SVG is safe as it is.
        "charts": [Markup(g) for g in gauges],
        "table": table(CAP_COLS, rows, query=query, table_id="caps", empty="No capped agreement."),
        "method": rows[0]["method"] if rows else None,
        "sql": sql(query, label),
    }


def _forecast_part(rows: list[dict], query: Q.Query, label: str, summary: list[dict]) -> dict:
    spend = [r for r in rows if r["metric"] == "inference_spend_usd"]
    charts = []
    if spend:
        basis = spend[0]["basis_period_label"]
        actual = [s for s in summary if s["period_label"] <= basis][-4:]
        cats = [s["period_label"] for s in actual] + [r["period_label"] for r in spend]
        pad = [None] * len(actual)
        charts.append(bar_chart(
            "Inference spend: actuals, then the PROJECTION with its band",
            cats,
            [
                ("actual", "#1e3a8a", [s["inference_spend_usd"] for s in actual] + [None] * len(spend)),
                ("projection low", "#fcd34d", pad + [r["projected_low_usd"] for r in spend]),
                ("projection", "#f59e0b", pad + [r["projected_usd"] for r in spend]),
                ("projection high", "#b45309", pad + [r["projected_high_usd"] for r in spend]),
            ],
            unit="$M", scale=Decimal(1_000_000), label=dollars_m, chart_id="forecast-band",
        ))  # fmt: skip
    return {
        # bar_chart escapes every text it draws: its SVG is safe as it is.
        "charts": [Markup(c) for c in charts],
        "table": table(
            FORECAST_COLS,
            rows,
            query=query,
            table_id="forecast",
            empty="No forecast made from this period.",
        ),
        "method": rows[0]["method"] if rows else None,
        "sql": sql(query, label),
    }


def outlook_part(conn, label: str, kind: str, folder: Path, summary: list[dict], in_period) -> dict:
    """The section's parts (the `outlook` of outlook.html.j2) for a quarter or year `label`
    (`kind`), and its CSVs (OUTLOOK_CSVS) written to `folder`."""
    qs = Q.OUTLOOK[kind]
    found = {name: query.run(conn, label) for name, query in qs.items()}
    for (name, columns), csv_name in zip(CSV_COLUMNS.items(), OUTLOOK_CSVS, strict=True):
        write_csv(folder / csv_name, found[name], columns)
    return {
        "margin": _margin_part(found["unit_margin"], qs["unit_margin"], label),
        "burndown": _burndown_part(found["burndown"], qs["burndown"], label, in_period),
        "caps": _caps_part(found["caps"], qs["caps"], label),
        "forecast": _forecast_part(found["forecast"], qs["forecast"], label, summary),
    }


__all__ = ["OUTLOOK_CSVS", "outlook_part"]
