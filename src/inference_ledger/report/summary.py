"""What every page shares: the period a report is asked for, the quarterly summary (its
columns, the trend charts drawn from it, the console table of it)."""

from __future__ import annotations

import re
from decimal import Decimal

from markupsafe import Markup

from inference_ledger.periods import Quarter
from inference_ledger.report import queries as Q
from inference_ledger.report.charts import bar_chart
from inference_ledger.report.render import Col, millions, money, ratio_text

YEAR_RE = re.compile(r"^(\d{4})$")
COLOURS = {
    "spend": "#1e3a8a",
    "implied": "#0d9488",
    "paid": "#ea580c",
    "received": "#16a34a",
    "payable": "#ea580c",
    "receivable": "#16a34a",
}
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


def fetch_summary(conn) -> list[dict]:
    return Q.SUMMARY_ALL.run(conn)


def fetch_reconciliation(conn, period: str) -> list[dict]:
    return Q.RECONCILIATION.run(conn, Quarter.parse(period).label)


def parse_report_period(value: str) -> str:
    """A quarter (2024-Q1) or a year (2024); anything else is an error naming the value."""
    if YEAR_RE.match(value or ""):
        return value
    try:
        return Quarter.parse(value).label
    except ValueError:
        raise ValueError(
            f"period {value!r} is neither a calendar quarter like 2024-Q1 nor a year like 2024"
        ) from None


def trend_charts(
    summary: list[dict], variance: list[dict], highlight: str | None, labels=None
) -> list[Markup]:
    """Spend vs implied revenue, paid vs received and the variance, one bar group per
    quarter of `summary` (those in `labels` if given), `highlight` shaded."""
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
    # bar_chart escapes every text it draws: its SVG is safe as it is.
    return [Markup(spend), Markup(flows), Markup(var)]


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
