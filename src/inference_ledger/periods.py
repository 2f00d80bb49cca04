"""Calendar and partner-fiscal period labels."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# The partner's fiscal year runs July-June and is named after the year it ends in.
FISCAL_YEAR_START_MONTH = 7

_QUARTER_RE = re.compile(r"^(\d{4})-Q([1-4])$")


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    quarter: int

    @classmethod
    def parse(cls, label: str) -> Quarter:
        m = _QUARTER_RE.match(label or "")
        if not m:
            raise ValueError(f"period {label!r} is not a calendar quarter like 2024-Q1")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, d: date) -> Quarter:
        return cls(d.year, (d.month - 1) // 3 + 1)

    @property
    def label(self) -> str:
        return f"{self.year}-Q{self.quarter}"

    @property
    def start(self) -> date:
        return date(self.year, 3 * (self.quarter - 1) + 1, 1)

    @property
    def end(self) -> date:
        """Exclusive."""
        return self.next().start

    def next(self) -> Quarter:
        return Quarter(self.year + (self.quarter == 4), self.quarter % 4 + 1)

    @property
    def fiscal_label(self) -> str:
        return fiscal_quarter_label(self.start)


def fiscal_quarter_label(d: date) -> str:
    months_in = (d.month - FISCAL_YEAR_START_MONTH) % 12
    fiscal_year = d.year + (1 if d.month >= FISCAL_YEAR_START_MONTH else 0)
    return f"FY{fiscal_year % 100:02d}-Q{months_in // 3 + 1}"


def quarters_between(start: date, end: date) -> list[Quarter]:
    """Quarters overlapping [start, end)."""
    out, q = [], Quarter.of(start)
    while q.start < end:
        out.append(q)
        q = q.next()
    return out
