"""Each small finance feed's rows -> records in plain Python, rule for rule as its Spark
builder in `ingest/finance.py` (revenue_records, settlement_records, commitment_records,
simple_records)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from inference_ledger.ingest import finance
from inference_ledger.ingest import finance_local_records as L
from inference_ledger.ingest import records as R
from inference_ledger.ingest.finance_local import Row, is_blank

Rates = dict[tuple[str, date], Decimal]


def revenue_records(rows: list[Row], rates: Rates) -> list[dict]:
    """Highest entry_version of each entry_id wins; lower versions are superseded."""
    L.check(rows, "finance_revenue")
    status = L.first_wins(
        rows,
        finance.DEDUPE["revenue"][0],
        lambda r: (-r.typed["entry_version"], r.source_file),
        finance.DEDUPE["revenue"][1],
        duplicate_why="exact duplicate of the entry version",
        superseded_why="a higher entry_version supersedes this one",
        conflict_on=["entry_version"],
        conflict_why="conflicting duplicate of the same entry_version",
    )
    out = []
    for row in rows:
        rec = L.record(row, "finance.revenue", status[id(row)], row.field or "entry_version")
        _convert(rec, rates, "revenue_date", ["amount"])
        out.append(rec)
    return out


def settlement_records(rows: list[Row], rates: Rates) -> list[dict]:
    """A statement named by another's supersedes_statement_id is replaced entirely by it."""
    L.check(rows, "finance_settlements", _period_check)
    valid = [r for r in rows if r.reason is None]
    superseded_by: dict[str, str] = {}
    for r in valid:
        target = r.typed["supersedes_statement_id"]
        if target is not None:
            superseded_by[target] = min(superseded_by.get(target, r.typed["statement_id"]),
                                        r.typed["statement_id"])  # fmt: skip
    known = {r.typed["statement_id"] for r in valid}
    for r in valid:
        target = r.typed["supersedes_statement_id"]
        if target is not None and target not in known:
            r.reason = f"supersedes unknown statement {target}"
            r.field = r.field or "supersedes_statement_id"
    status = L.first_wins(
        rows,
        finance.DEDUPE["settlements"][0],
        L.by_file,
        finance.DEDUPE["settlements"][1],
        duplicate_why="exact duplicate row",
        superseded_why="conflicting duplicate statement_id",
    )
    out = []
    for row in rows:
        by = superseded_by.get(row.typed["statement_id"]) if row.reason is None else None
        state = (R.SUPERSEDED, f"superseded by statement {by}") if by else status[id(row)]
        rec = L.record(row, "finance.settlements", state, row.field)
        _convert(rec, rates, "statement_date", ["amount", "reported_basis_amount"])
        out.append(rec)
    return out


def _period_check(row: Row) -> list[L.Check]:
    # The raw strings (untrimmed), as the Spark check compares them.
    end, start = row.raw["period_end"], row.raw["period_start"]
    bad = None if end is None or start is None else end <= start
    return [(bad, "period_end", "period_end must be after period_start")]


def commitment_records(rows: list[Row], rates: Rates) -> list[dict]:
    """One row per commitment_id; the amount converts to USD at the rate of start_date."""
    L.check(rows, "finance_commitments", _commitment_checks)
    status = L.first_wins(
        rows,
        finance.DEDUPE["commitments"][0],
        L.by_file,
        finance.DEDUPE["commitments"][1],
        duplicate_why="exact duplicate row",
        superseded_why="conflicting duplicate of ['commitment_id']",
        conflict_on=["commitment_id"],
        conflict_why="conflicting duplicate of ['commitment_id']",
    )
    out = []
    for row in rows:
        rec = L.record(row, "finance.commitments", status[id(row)], row.field or "commitment_id")
        _convert(rec, rates, "start_date", ["amount"])
        out.append(rec)
    return out


def _commitment_checks(row: Row) -> list[L.Check]:
    t = row.typed
    amount, start, end = t["amount"], t["start_date"], t["end_date"]
    nothing = is_blank(row.raw["eligible_services"]) and is_blank(row.raw["eligible_meters"])
    return [
        (None if amount is None else amount <= 0, "amount", "amount must be greater than 0"),
        (
            None if end is None or start is None else end <= start,
            "end_date",
            "end_date must be after start_date",
        ),
        (
            nothing,
            "eligible_services",
            "name eligible_services or eligible_meters (or * for every service)",
        ),
    ]


def simple_records(rows: list[Row], feed: str, key: list[str], same: list[str]) -> list[dict]:
    """Contracts, FX, prices: typed, checked, exact duplicates removed, conflicts quarantined."""
    L.check(rows, finance.FEEDS[feed][0])
    status = L.first_wins(
        rows,
        key,
        L.by_file,
        same,
        duplicate_why="exact duplicate row",
        superseded_why=f"conflicting duplicate of {key}",
        conflict_on=key,
        conflict_why=f"conflicting duplicate of {key}",
    )
    return [L.record(r, f"finance.{feed}", status[id(r)], r.field or key[0]) for r in rows]


def _convert(rec: dict, rates: Rates, date_col: str, amounts: list[str]) -> None:
    rate = L.fx_rate(rates, rec["currency"], rec[date_col])
    rec["fx_rate"] = rate
    for col in amounts:
        rec[col.replace("_amount", "") + "_usd"] = L.to_usd(rec[col], rate)


def rates_of(fx_rows) -> Rates:
    """{(currency, rate_date): usd_per_unit} of the FX table's rows."""
    return {(r["currency"], r["rate_date"]): r["usd_per_unit"] for r in fx_rows}


def by_status(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        out[r["status"]].append(r)
    return out
