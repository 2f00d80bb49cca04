"""The records of a small finance feed in plain Python: the same checks, statuses, reasons and
USD amounts as `ingest/finance.py` builds with Spark (`with_feed_checks`,
`records.first_wins_status`, `fx.with_fx_rate` / `to_usd`), one dict per input row with the
lake table's columns and the accounting columns."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

from inference_ledger import contracts
from inference_ledger.ingest import records as R
from inference_ledger.ingest.finance_local import (
    Row,
    Unsupported,
    is_blank,
    parse_date,
    parse_decimal,
    parse_int,
    spark_trim,
)

REPORTING_CURRENCY = "USD"
_TEN_PLACES = Decimal(1).scaleb(-10)
# fx.to_usd narrows the amount to decimal(22,10) and the rate to decimal(14,10); with ANSI on,
# a value that does not fit fails the Spark job: such a feed is left to Spark to fail the same.
_AMOUNT_LIMIT = Decimal(10) ** 12
_RATE_LIMIT = Decimal(10) ** 4

Check = tuple[object, str, str]  # (is bad: True / False / None as SQL, field, reason)


def check(rows: list[Row], contract: str, extra: Callable[[Row], list[Check]] | None = None):
    """Typed values and the first failed check of every row, in `_typed`'s order."""
    schema = contracts.load_schema("inputs", contract)
    cols = contracts.columns("inputs", contract)
    for row in rows:
        checks: list[Check] = []
        for col in cols:
            checks += _column_checks(row, col, schema["properties"][col.name])
        checks += extra(row) if extra else []
        for bad, field, why in checks:
            if bad is True:
                row.reason, row.field = why, field or None
                break


def _column_checks(row: Row, col: contracts.Column, spec: dict) -> list[Check]:
    name, raw = col.name, row.raw[col.name]
    what = None
    if col.kind == "decimal":
        parsed = parse_decimal(raw, col.precision, col.scale)
        what = "a plain decimal number"
    elif col.kind == "date":
        parsed = parse_date(raw)
        what = "an ISO date (YYYY-MM-DD)"
    elif col.kind == "integer":
        parsed = parse_int(raw)
        what = "an integer"
    else:
        parsed = spark_trim(raw) or None
    row.typed[name] = parsed
    blank = is_blank(raw)
    checks: list[Check] = []
    if not col.nullable:
        checks.append((blank, name, f"required field {name} is empty"))
    if what:
        checks.append((not blank and parsed is None, name, f"{name} is not {what}"))
    if "enum" in spec:
        bad = not blank and parsed not in spec["enum"]
        checks.append((bad, name, f"{name} must be one of {spec['enum']}"))
    elif "pattern" in spec and col.kind == "string":
        bad = not blank and not re.search(spec["pattern"], parsed)
        checks.append((bad, name, f"{name} does not match {spec['pattern']}"))
    if "minimum" in spec:
        below = None if parsed is None else parsed < spec["minimum"]
        checks.append((below, name, f"{name} is below {spec['minimum']}"))
    return checks


def raw_record(row: Row) -> str:
    """to_json of the raw strings (null fields left out, as Spark's to_json does)."""
    doc = {k: v for k, v in row.raw.items() if v is not None}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def first_wins(
    rows: list[Row],
    key: list[str],
    order: Callable[[Row], tuple],
    same: list[str],
    *,
    duplicate_why: str,
    superseded_why: str,
    conflict_on: list[str] | None = None,
    conflict_why: str | None = None,
) -> dict[int, tuple[str, str | None]]:
    """{id(row): (status, reason)}: `records.first_wins_status` for rows in Python."""
    out: dict[int, tuple[str, str | None]] = {}
    groups: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        if row.reason is not None:
            out[id(row)] = (R.QUARANTINED, row.reason)
        else:
            groups[tuple(row.typed[k] for k in key)].append(row)
    for members in groups.values():
        members.sort(key=order)  # stable: ties keep the file's order
        winner = members[0]
        out[id(winner)] = (R.LOADED, None)
        for row in members[1:]:
            if all(row.typed[c] == winner.typed[c] for c in same):
                out[id(row)] = (R.DEDUPLICATED, duplicate_why)
            elif conflict_on and all(row.typed[c] == winner.typed[c] for c in conflict_on):
                out[id(row)] = (R.QUARANTINED, conflict_why)
            else:
                out[id(row)] = (R.SUPERSEDED, superseded_why)
    return out


def by_file(row: Row) -> tuple:
    return (row.source_file,)


def record(row: Row, source: str, status: tuple[str, str | None], field: str | None) -> dict:
    """The row as a record: typed columns + the accounting columns (`_finish`)."""
    state, reason = status
    return {
        **row.typed,
        "source_run_id": None,
        "source": source,
        "source_file": row.source_file,
        "line_number": None,
        "status": state,
        "reason": reason,
        "field": field if state == R.QUARANTINED else None,
        "raw_record": raw_record(row),
    }


def fx_rate(rates: dict[tuple[str, date], Decimal], currency, day) -> Decimal | None:
    """`fx.with_fx_rate`: USD is 1 by definition; else the feed's rate, or None."""
    if currency == REPORTING_CURRENCY:
        return Decimal(1).quantize(_TEN_PLACES)
    rate = rates.get((currency, day))
    if rate is not None and abs(rate) >= _RATE_LIMIT:
        raise Unsupported(f"FX rate {rate} overflows decimal(14,10)")
    return rate


def to_usd(amount: Decimal | None, rate: Decimal | None) -> Decimal | None:
    """`fx.to_usd`: the exact product, rounded half-up to 10 places."""
    if amount is not None and abs(amount) >= _AMOUNT_LIMIT:
        raise Unsupported(f"amount {amount} overflows decimal(22,10)")
    if amount is None or rate is None:
        return None
    with localcontext(Context(prec=80)):
        usd = (amount * rate).quantize(_TEN_PLACES, rounding=ROUND_HALF_UP)
    return abs(usd) if usd == 0 else usd


def require_fx(records: list[dict], what: str, currency_col: str, date_col: str) -> None:
    """`fx.require_fx` over the loaded records."""
    missing = sorted(
        {
            (r[currency_col], r[date_col])
            for r in records
            if r["status"] == R.LOADED and r["fx_rate"] is None
        }
    )[:10]
    if missing:
        pairs = ", ".join(f"{c} on {d}" for c, d in missing)
        raise R.InputError(f"{what}: no FX rate to {REPORTING_CURRENCY} for {pairs}")


def contract_overlaps(terms: list[dict]) -> list[str]:
    """`finance.contract_overlaps` over the loaded terms (in key order)."""
    far = date(9999, 12, 31)
    out = []
    for a in terms:
        for b in terms:
            if (
                a["agreement_id"] == b["agreement_id"]
                and a["direction"] == b["direction"]
                and a["effective_from"] < b["effective_from"]
                and (a["effective_to"] or far) > b["effective_from"]
            ):
                out.append((a["agreement_id"], a["direction"], a["effective_from"], b))
    out.sort(key=lambda o: (o[0], o[1], o[2], o[3]["effective_from"]))
    return [
        f"agreement {ag} ({d}): terms from {f} and {b['effective_from']} overlap"
        for ag, d, f, b in out
    ]
