"""What the ingest needs to know about checked billing records, from one aggregation over
them: rows per file (the manifests' row counts), each CSV file's first line number as read,
the per-file accounting, the input side of the control totals and the loaded lines without an
FX rate. Small: one row per file, status, month, currency (and day, for lines lacking a rate)."""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from inference_ledger.ingest import records as R

_KEY = ["source", "source_file", "_csv", "status", "billing_month", "billing_currency"]


@dataclass(frozen=True)
class Group:
    source: str
    source_file: str
    csv: bool
    status: str
    billing_month: str | None
    billing_currency: str | None
    without_fx: date | None  # the usage day of loaded lines lacking an FX rate
    rows: int
    first_id: int | None
    billed_cost: Decimal | None  # of loaded lines
    billed_cost_usd: Decimal | None


def summarize(records: DataFrame) -> list[Group]:
    """One Spark job over `billing.checked_records` output."""
    loaded = F.col("status") == R.LOADED
    nofx = F.when(loaded & F.col("fx_rate").isNull(), F.col("usage_date")).alias("_without_fx")
    rows = (
        records.groupBy(*_KEY, nofx)
        .agg(
            F.count(F.lit(1)).alias("_rows"),
            F.min("line_number").alias("_first_id"),
            F.sum(F.when(loaded, F.col("billed_cost"))).alias("_billed"),
            F.sum(F.when(loaded, F.col("billed_cost_usd"))).alias("_usd"),
        )
        .collect()
    )
    return [Group(*r) for r in rows]


def rows_per_file(groups: list[Group]) -> dict[str, int]:
    out: dict[str, int] = {}
    for g in groups:
        out[g.source_file] = out.get(g.source_file, 0) + g.rows
    return out


def first_ids(groups: list[Group]) -> dict[str, int]:
    """Each CSV file's smallest line number as read (its line 2: `billing.numbered`)."""
    out: dict[str, int] = {}
    for g in groups:
        if g.csv and g.first_id is not None:
            out[g.source_file] = min(out.get(g.source_file, g.first_id), g.first_id)
    return out


def numbered_as_read(groups: list[Group]) -> bool:
    """Every CSV file's first row was read as line 2: each was read in a partition of its own
    (`billing.one_file_per_partition`), so the line numbers as read are final."""
    return all(first == 2 for first in first_ids(groups).values())


def file_counts(groups: list[Group]) -> dict[str, dict]:
    """What `records.file_counts` gives per file (with the months of loaded and quarantined
    rows), keyed by file."""
    out: dict[str, dict] = {}
    months: dict[tuple[str, str], set[str]] = {}
    for g in groups:
        row = out.setdefault(
            g.source_file,
            {
                "source": g.source,
                "source_file": g.source_file,
                "rows_read": 0,
                **{f"rows_{s}": 0 for s in R.STATUSES},
            },
        )
        row["rows_read"] += g.rows
        row[f"rows_{g.status}"] += g.rows
        if g.billing_month is not None:
            months.setdefault((g.source_file, g.status), set()).add(g.billing_month)
    for path, row in out.items():
        for s in (R.LOADED, R.QUARANTINED):
            row[f"months_{s}"] = sorted(months.get((path, s), ()))
    return out


def _add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None or b is None:
        return b if a is None else a
    with decimal.localcontext() as exact:
        exact.prec = 80  # sums of decimal(38,10): never rounded
        return a + b


def loaded_totals(groups: list[Group]) -> dict[tuple[str, str], dict]:
    """Per (billing month, currency) of the loaded lines: rows, billed cost, its USD."""
    out: dict[tuple[str, str], dict] = {}
    for g in groups:
        if g.status != R.LOADED:
            continue
        t = out.setdefault(
            (g.billing_month, g.billing_currency),
            {"rows_loaded": 0, "billed_cost_in": None, "billed_cost_usd": None},
        )
        t["rows_loaded"] += g.rows
        t["billed_cost_in"] = _add(t["billed_cost_in"], g.billed_cost)
        t["billed_cost_usd"] = _add(t["billed_cost_usd"], g.billed_cost_usd)
    return out


def without_fx(groups: list[Group]) -> list[tuple[str, str, date]]:
    """(billing month, currency, day) of loaded lines lacking an FX rate, in order."""
    return sorted(
        {
            (g.billing_month, g.billing_currency, g.without_fx)
            for g in groups
            if g.status == R.LOADED and g.without_fx is not None
        }
    )
