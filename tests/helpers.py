"""Small builders for hand-made inputs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from inference_ledger import contracts
from inference_ledger.spark import local_frame

D = Decimal


def lake_df(spark, table: str, rows: list[dict]):
    """A DataFrame with a lake table's contract schema; unspecified columns are null."""
    schema = contracts.spark_schema("lake", table)
    names = [f.name for f in schema.fields]
    data = [tuple(r.get(n) for n in names) for r in rows]
    relaxed = schema.__class__([f.__class__(f.name, f.dataType, True) for f in schema.fields])
    return local_frame(spark, data, relaxed)


def term(
    agreement,
    direction,
    basis,
    rate,
    start,
    end=None,
    cap=None,
    tol_abs="1.00",
    tol_pct="0.001",
    days=30,
):
    return {
        "agreement_id": agreement,
        "direction": direction,
        "counterparty": "Partner",
        "basis": basis,
        "rate": D(rate),
        "effective_from": date.fromisoformat(start),
        "effective_to": date.fromisoformat(end) if end else None,
        "cap_amount": D(cap) if cap else None,
        "tolerance_abs": D(tol_abs),
        "tolerance_pct": D(tol_pct),
        "payment_terms_days": days,
        "source_file": "contracts.csv",
    }


def revenue(entry, day, line, amount):
    return {
        "entry_id": entry,
        "entry_version": 1,
        "revenue_date": date.fromisoformat(day),
        "product_line": line,
        "amount": D(amount),
        "currency": "USD",
        "fx_rate": D(1),
        "amount_usd": D(amount),
        "source_file": "revenue.csv",
    }


def statement(sid, agreement, direction, start, end, amount, basis=None, rate="0.2"):
    return {
        "statement_id": sid,
        "agreement_id": agreement,
        "direction": direction,
        "counterparty": "Partner",
        "period_start": date.fromisoformat(start),
        "period_end": date.fromisoformat(end),
        "reported_basis_amount": D(basis) if basis else None,
        "reported_basis_usd": D(basis) if basis else None,
        "rate": D(rate),
        "amount": D(amount),
        "amount_usd": D(amount),
        "currency": "USD",
        "fx_rate": D(1),
        "statement_date": date.fromisoformat(end),
        "source_file": "settlements.csv",
    }


def by_key(rows, *keys):
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


def full_plan(spark, df) -> str:
    """The executed plan with every expression in full (the default cuts after 25 fields)."""
    spark.conf.set("spark.sql.debug.maxToStringFields", "100000")
    try:
        return df._jdf.queryExecution().executedPlan().toString()
    finally:
        spark.conf.unset("spark.sql.debug.maxToStringFields")


def failed(outcomes) -> list[tuple]:
    """(suite, check, severity, column, observed) of every failed check of GX suite outcomes."""
    return sorted(
        (r.suite, r.check_name, r.severity, r.column_name, r.observed_value)
        for o in outcomes
        for r in o.checks
        if not r.success
    )
