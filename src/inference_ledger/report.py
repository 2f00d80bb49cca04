"""Period reports a finance reviewer reads: HTML (self-contained) + CSV, from `marts` only."""

from __future__ import annotations

import csv
import html
from decimal import Decimal
from pathlib import Path

from inference_ledger.periods import Quarter

SUMMARY_SQL = """SELECT period_label, fiscal_period_label, inference_spend_usd, revshare_paid_usd,
       implied_revenue_usd, revshare_received_usd, net_revshare_usd, spend_to_implied_revenue_ratio
FROM marts.quarterly_summary ORDER BY period_label"""
RECONCILIATION_SQL = """SELECT period_label, agreement_id, direction, basis_usd, rate, expected_usd,
       settled_usd, variance_usd, variance_pct, status, implied_basis_usd, cap_remaining_usd,
       statement_ids, is_adjustment
FROM marts.revshare_reconciliation WHERE period_label = %s ORDER BY direction, agreement_id, is_adjustment"""

STATUS_COLOURS = {
    "matched": "#1b7f3b",
    "pending": "#6b7280",
    "underpaid": "#b45309",
    "overpaid": "#b45309",
    "missing_settlement": "#b91c1c",
    "unexpected_settlement": "#b91c1c",
}


def fetch_summary(conn) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(SUMMARY_SQL)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def fetch_reconciliation(conn, period: str) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(RECONCILIATION_SQL, (period,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def millions(v: Decimal | None) -> str:
    return "" if v is None else f"{(v / Decimal(1_000_000)).quantize(Decimal('0.1')):,}"


def money(v: Decimal | None) -> str:
    return "" if v is None else f"{v.quantize(Decimal('0.01')):,}"


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        if not rows:
            fh.write("")
            return
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _table(rows: list[dict], fmt: dict, status_col: str | None = None) -> str:
    if not rows:
        return "<p><em>No rows.</em></p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = []
    for r in rows:
        cells = []
        for k, v in r.items():
            text = fmt.get(k, lambda x: "" if x is None else str(x))(v)
            style = ""
            if k == status_col:
                style = f' style="color:{STATUS_COLOURS.get(v, "#111")};font-weight:600"'
            num = ' class="num"' if isinstance(v, Decimal) else ""
            cells.append(f"<td{num}{style}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


CSS = """body{font-family:system-ui,sans-serif;margin:2rem;color:#111}table{border-collapse:collapse;margin:1rem 0}
th,td{border:1px solid #ccc;padding:.3rem .6rem}td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f3f4f6}code{background:#f3f4f6;padding:.1rem .3rem}"""


def write_period_report(conn, period: str, out_dir: Path) -> Path:
    """reports/<period>/index.html + summary.csv + reconciliation.csv."""
    Quarter.parse(period)  # validates the label before it reaches a path or a query
    summary = [r for r in fetch_summary(conn) if r["period_label"] == period]
    rec = fetch_reconciliation(conn, period)
    folder = out_dir / period
    folder.mkdir(parents=True, exist_ok=True)
    _write_csv(folder / "summary.csv", summary)
    _write_csv(folder / "reconciliation.csv", rec)
    fmt = {
        k: money
        for k in (
            "basis_usd",
            "expected_usd",
            "settled_usd",
            "variance_usd",
            "implied_basis_usd",
            "cap_remaining_usd",
            "inference_spend_usd",
            "revshare_paid_usd",
            "implied_revenue_usd",
            "revshare_received_usd",
            "net_revshare_usd",
        )
    }
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Inference Ledger {period}</title>
<style>{CSS}</style></head><body>
<h1>Inference Ledger — {html.escape(period)}</h1>
<h2>Quarterly summary</h2>{_table(summary, fmt)}
<p>Source: <code>SELECT * FROM marts.quarterly_summary WHERE period_label = '{html.escape(period)}'</code></p>
<h2>Revenue-share reconciliation</h2>{_table(rec, fmt, status_col="status")}
<p>Source: <code>SELECT * FROM marts.revshare_reconciliation WHERE period_label = '{html.escape(period)}'</code></p>
<p><a href="../index.html">All periods</a></p></body></html>"""
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    write_index(conn, out_dir)
    return path


def write_index(conn, out_dir: Path) -> Path:
    rows = fetch_summary(conn)
    links = "".join(
        f'<li><a href="{html.escape(r["period_label"])}/index.html">{html.escape(r["period_label"])}</a>'
        f" ({html.escape(r['fiscal_period_label'])})</li>"
        for r in rows
        if (out_dir / r["period_label"] / "index.html").exists()
    )
    path = out_dir / "index.html"
    path.write_text(
        f'<!doctype html><html><head><meta charset="utf-8"><title>Inference Ledger reports</title>'
        f"<style>{CSS}</style></head><body><h1>Reports</h1><ul>{links}</ul></body></html>",
        encoding="utf-8",
    )
    return path


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
