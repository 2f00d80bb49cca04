"""What an incremental ingest reads again, decided without Spark or the file system: pure
functions of what the landing holds now (paths and SHA-256 checksums) and what succeeded runs
ingested before (`known`: path -> checksum). steps/ingest*.py gather those facts and execute the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

# A usage re-pull may land up to this many days after the buckets it covers (in a later day's
# folder); incremental ingest re-reads that window. A file it cannot place makes the run read
# every usage file, which is always right.
USAGE_REPULL_DAYS = 3


def finance_unchanged(folder: str, current: Mapping[str, str], known: Mapping[str, str]) -> bool:
    """True when every finance file under `folder` (path -> checksum now) is one a succeeded
    run ingested with the same checksum, and none it ingested is gone: the finance tables in
    the lake are current. Any change rebuilds them all (revenue converts with the FX feed)."""
    before = {p: s for p, s in known.items() if p.startswith(f"{folder.rstrip('/')}/")}
    return bool(current) and dict(current) == before


@dataclass(frozen=True)
class BillingMonth:
    """One billing month's export runs as the plan sees them."""

    month: str
    paths: tuple[str, ...]
    has_missing_blobs: bool


def billing_months_to_skip(
    months: Iterable[BillingMonth],
    sums: Mapping[str, str],
    known: Mapping[str, str],
    in_lake: set[str],
) -> set[str]:
    """The billing months not read again: their lake partition exists, no run of theirs lacks
    a file, and every file (all scopes, all runs) was ingested before with the same checksum."""
    return {
        m.month
        for m in months
        if m.month in in_lake
        and not m.has_missing_blobs
        and all(known.get(p) == sums[p] for p in m.paths)
    }


def folder_day(path: str) -> date | None:
    """The day of a usage file's day folder (`…/YYYY-MM-DD/page.json`), if it has one."""
    name = path.rstrip("/").rsplit("/", 2)[-2] if "/" in path else ""
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


@dataclass(frozen=True)
class UsagePlan:
    new: tuple[str, ...]  # new or changed files
    months: tuple[str, ...]  # usage months to rewrite


def usage_months_to_rewrite(
    files: Iterable[str], sums: Mapping[str, str], known: Mapping[str, str]
) -> UsagePlan | None:
    """The new or changed usage files and the months they may touch (their day's, and the
    month of the day a re-pull reaches back to); None to read everything: a file outside a day
    folder cannot be placed in a month."""
    new = tuple(p for p in files if known.get(p) != sums[p])
    months: set[str] = set()
    for p in new:
        day = folder_day(p)
        if day is None:
            return None
        back = day - timedelta(days=USAGE_REPULL_DAYS)
        months |= {f"{day:%Y-%m}", f"{back:%Y-%m}"}
    return UsagePlan(new, tuple(sorted(months)))


def usage_files_to_read(files: Iterable[str], plan: UsagePlan, fed: set[str]) -> list[str]:
    """To dedupe a rewritten month completely: the new files, every file that fed its lake
    partition (`fed`) and every file in its day folders. The others are skipped."""
    months = set(plan.months)
    out = []
    for p in files:
        day = folder_day(p)
        if p in plan.new or p in fed or (day is not None and f"{day:%Y-%m}" in months):
            out.append(p)
    return out
