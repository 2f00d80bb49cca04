"""What the page templates are given: figures formatted as text, tables as rows of cells,
queries as the SQL they print; and the CSV files written beside each page."""

from __future__ import annotations

import csv
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


def _cell_class(c: Col, v) -> str:
    if c.numeric and isinstance(v, Decimal) and v < 0:
        return "num neg"
    return "num" if c.numeric else "key" if c.key in KEY_COLUMNS else ""


def table(
    cols: Sequence[Col],
    rows: Iterable[dict],
    *,
    query: Query | None = None,
    table_id: str = "",
    row_class: Callable[[dict], str] | None = None,
    empty: str = "No rows.",
    optional: Sequence[str] = (),
) -> dict:
    """A table as the `table` macro renders it: `optional` columns are left out when no row
    has a value in them; a `status` column is shown as a pill."""
    rows = list(rows)
    cols = [c for c in cols if c.key not in optional or any(r.get(c.key) is not None for r in rows)]
    return {
        "id": table_id,
        "sql": query.name if query is not None else "",
        "empty": empty,
        "head": [{"text": c.header, "numeric": c.numeric} for c in cols],
        "rows": [
            {
                "class": row_class(r) if row_class else "",
                "cells": [
                    {"status": r.get(c.key)}
                    if c.key == "status"
                    else {
                        "class": _cell_class(c, r.get(c.key)),
                        "key": c.key,
                        "text": c.fmt(r.get(c.key)),
                    }
                    for c in cols
                ],
            }
            for r in rows
        ],
    }


def sql(query: Query, param=None, note: str = "") -> dict:
    """A query as the `sql` macro prints it under the figures it returns."""
    return {"name": query.name, "text": query.shown(param), "note": note}


# ---------------------------------------------------------------- CSV


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
