"""HTML building blocks: formatting, tables with their SQL, the page shell (inline CSS)."""

from __future__ import annotations

import csv
import html
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from inference_ledger.report.queries import Query

MILLION = Decimal(1_000_000)
KEY_COLUMNS = {"period_label", "label", "posted_in", "direction", "fiscal_period_label"}

STATUS_COLOURS = {
    # status: (text colour, background)
    "matched": ("#14532d", "#dcfce7"),
    "pending": ("#374151", "#e5e7eb"),
    "underpaid": ("#7c2d12", "#fed7aa"),
    "overpaid": ("#7c2d12", "#fed7aa"),
    "missing_settlement": ("#7f1d1d", "#fecaca"),
    "unexpected_settlement": ("#7f1d1d", "#fecaca"),
}
STATUS_MEANING = {
    "matched": "settled within the agreement's tolerance of expected",
    "pending": "no statement yet and the payment terms have not elapsed",
    "underpaid": "settled less than expected, beyond tolerance",
    "overpaid": "settled more than expected, beyond tolerance",
    "missing_settlement": "no statement and the payment terms have elapsed",
    "unexpected_settlement": "settled with no terms in effect for the period",
}


# ---------------------------------------------------------------- formatting


def money(v: Decimal | None) -> str:
    return "" if v is None else f"{Decimal(v).quantize(Decimal('0.01')):,}"


def millions(v: Decimal | None) -> str:
    return "" if v is None else f"{(Decimal(v) / MILLION).quantize(Decimal('0.1')):,}"


def dollars_m(v: Decimal | None) -> str:
    """$546.8M, -$69.1M."""
    if v is None:
        return ""
    m = millions(abs(Decimal(v)))
    return f"-${m}M" if v < 0 and m != "0.0" else f"${m}M"


def pct(v: Decimal | None) -> str:
    """A fraction as a percentage with 3 decimals (0.0178571429 -> 1.786%)."""
    return "" if v is None else f"{(Decimal(v) * 100).quantize(Decimal('0.001')):,}%"


def rate(v: Decimal | None) -> str:
    """A rate as a percentage, trailing zeros dropped (0.2 -> 20%, 0.15 -> 15%)."""
    if v is None:
        return ""
    text = f"{(Decimal(v) * 100).quantize(Decimal('0.0001')):f}".rstrip("0").rstrip(".")
    return f"{text}%"


def integer(v) -> str:
    return "" if v is None else f"{int(v):,}"


def plain(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def ratio_text(v: Decimal | None) -> str:
    return "" if v is None else f"{Decimal(v).quantize(Decimal('0.0001'))}"


# ---------------------------------------------------------------- tables


@dataclass(frozen=True)
class Col:
    header: str
    key: str
    fmt: Callable = plain
    numeric: bool = False


def status_pill(status: str | None) -> str:
    if not status:
        return ""
    fg, bg = STATUS_COLOURS.get(status, ("#111827", "#f3f4f6"))
    return (
        f'<span class="pill" style="color:{fg};background:{bg}" '
        f'title="{html.escape(STATUS_MEANING.get(status, ""))}">{html.escape(status)}</span>'
    )


def table(
    cols: Sequence[Col],
    rows: Iterable[dict],
    *,
    optional: Sequence[str] = (),
    **kwargs,
) -> str:
    """`optional` columns are left out when no row has a value in them."""
    rows = list(rows)
    cols = [c for c in cols if c.key not in optional or any(r.get(c.key) is not None for r in rows)]
    return _table(cols, rows, **kwargs)


def _table(
    cols: Sequence[Col],
    rows: Iterable[dict],
    *,
    query: Query | None = None,
    table_id: str = "",
    row_class: Callable[[dict], str] | None = None,
    empty: str = "No rows.",
) -> str:
    rows = list(rows)
    attrs = f' id="{html.escape(table_id)}"' if table_id else ""
    if query is not None:
        attrs += f' data-sql="sql-{html.escape(query.name)}"'
    if not rows:
        return f'<p class="empty"{attrs}><em>{html.escape(empty)}</em></p>'
    head = "".join(
        f"<th{' class=num' if c.numeric else ''}>{html.escape(c.header)}</th>" for c in cols
    )
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c.key)
            if c.key == "status":
                cells.append(f"<td>{status_pill(v)}</td>")
                continue
            text = html.escape(c.fmt(v))
            cls = ' class="num"' if c.numeric else ' class="key"' if c.key in KEY_COLUMNS else ""
            if c.numeric and isinstance(v, Decimal) and v < 0:
                cls = ' class="num neg"'
            cells.append(f'<td{cls} data-col="{html.escape(c.key)}">{text}</td>')
        rc = row_class(r) if row_class else ""
        body.append(f"<tr{f' class={rc!r}' if rc else ''}>{''.join(cells)}</tr>")
    return (
        f'<div class="tw"><table{attrs}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def sql_block(query: Query, param=None, note: str = "") -> str:
    extra = f" <span class=note>{html.escape(note)}</span>" if note else ""
    return (
        f'<div class="sql"><div class="sqlhead">Query{extra}</div>'
        f'<pre id="sql-{html.escape(query.name)}">{html.escape(query.shown(param))}</pre></div>'
    )


def write_csv(path: Path, rows: list[dict], columns: Sequence[str] | None = None) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        names = list(columns or (rows[0].keys() if rows else []))
        if not names:
            return
        w = csv.DictWriter(fh, fieldnames=names, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _csv_value(r.get(k)) for k in names})


def _csv_value(v):
    """Exact values as plain text: decimals never in exponent form (0E-10 -> 0.0000000000)."""
    if v is None:
        return ""
    if isinstance(v, Decimal):
        return f"{v:f}"
    return v


# ---------------------------------------------------------------- page shell

CSS = """
*{box-sizing:border-box}
body{font-family:"DejaVu Sans",system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#111827;
 background:#f8fafc;font-size:14px;line-height:1.45}
header.top{background:#0f172a;color:#f8fafc;padding:18px 32px}
header.top h1{margin:0;font-size:22px}
header.top .sub{color:#cbd5e1;margin-top:4px}
header.top a{color:#93c5fd}
main{padding:14px 20px 40px;max-width:1400px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:12px 14px;margin:14px 0}
.tw{overflow-x:auto}
h2{font-size:17px;margin:0 0 8px}
h3{font-size:14px;margin:14px 0 6px}
p{margin:6px 0}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #e2e8f0;padding:4px 8px;vertical-align:top}
th{background:#f1f5f9;text-align:left;font-weight:600;max-width:150px}
td.key{white-space:nowrap}
th.num{text-align:right}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.neg{color:#b91c1c}
tr.adjustment td{background:#fffbeb}
tr.total td{font-weight:700;border-top:2px solid #64748b}
tr.current td{background:#fef9c3}
tr.fail td{background:#fef2f2}
.pill{display:inline-block;padding:1px 8px;border-radius:999px;font-weight:600;font-size:12px;
 white-space:nowrap}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:4px 0}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px 14px;min-width:180px}
.card .k{color:#475569;font-size:12px}
.card .v{font-size:22px;font-weight:700;font-variant-numeric:tabular-nums}
.card .d{color:#64748b;font-size:12px}
.badge{display:inline-block;padding:2px 10px;border-radius:4px;font-weight:700;font-size:12px}
.badge.open{background:#dbeafe;color:#1e3a8a}
.badge.closed{background:#1f2937;color:#f9fafb}
.badge.ok{background:#dcfce7;color:#14532d}
.badge.bad{background:#fecaca;color:#7f1d1d}
.badge.prov{background:#fef3c7;color:#78350f}
.badge.none{background:#f3f4f6;color:#4b5563}
.charts{display:flex;flex-wrap:wrap;gap:10px}
.charts svg{border:1px solid #e2e8f0;border-radius:6px;background:#fff}
svg .ct{font-size:13px;font-weight:700;fill:#111827}
svg .ax{font-size:11px;fill:#374151}
svg .vl{font-size:10px;fill:#111827}
.sql{margin:6px 0 2px}
.sqlhead{font-size:11px;color:#64748b;text-transform:uppercase;letter-spacing:.04em}
.sql .note{text-transform:none;letter-spacing:0}
pre{background:#f1f5f9;border:1px solid #e2e8f0;border-radius:4px;padding:5px 8px;margin:2px 0;
 font-size:10.5px;line-height:1.35;white-space:pre-wrap;color:#334155}
ul.expl{margin:4px 0 10px 0;padding-left:20px}
ul.expl li{margin:2px 0}
.muted{color:#64748b}
.empty{color:#64748b}
nav a{margin-right:12px}
"""


def page(title: str, heading: str, sub: str, body: str, nav: str = "") -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{CSS}</style></head><body>"
        f'<header class="top"><h1>{html.escape(heading)}</h1><div class="sub">{sub}</div>'
        f"{f'<nav class=sub>{nav}</nav>' if nav else ''}</header>"
        f"<main>{body}</main></body></html>"
    )


def section(title: str, body: str, section_id: str = "") -> str:
    sid = f' id="{html.escape(section_id)}"' if section_id else ""
    return f"<section{sid}><h2>{html.escape(title)}</h2>{body}</section>"


def card(key: str, value: str, detail: str = "") -> str:
    d = f'<div class="d">{html.escape(detail)}</div>' if detail else ""
    return (
        f'<div class="card"><div class="k">{html.escape(key)}</div>'
        f'<div class="v">{html.escape(value)}</div>{d}</div>'
    )
