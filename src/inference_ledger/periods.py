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


def fiscal_year(d: date) -> int:
    """The partner fiscal year d falls in, named by the calendar year it ends in."""
    return d.year + (1 if FISCAL_YEAR_START_MONTH > 1 and d.month >= FISCAL_YEAR_START_MONTH else 0)


def _fiscal_month_index(d: date) -> int:
    """0 for the fiscal year's first month (July) ... 11 for its last (June)."""
    return (d.month - FISCAL_YEAR_START_MONTH) % 12


def fiscal_year_label(d: date) -> str:
    return f"FY{fiscal_year(d) % 100:02d}"


def fiscal_quarter_label(d: date) -> str:
    return f"{fiscal_year_label(d)}-Q{_fiscal_month_index(d) // 3 + 1}"


def fiscal_half_label(d: date) -> str:
    return f"{fiscal_year_label(d)}-H{_fiscal_month_index(d) // 6 + 1}"


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month and its calendar and partner-fiscal labels (marts.period_calendar)."""

    year: int
    month: int

    @classmethod
    def of(cls, d: date) -> Month:
        return cls(d.year, d.month)

    @property
    def start(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        """Exclusive."""
        return date(self.year + (self.month == 12), self.month % 12 + 1, 1)

    def row(self) -> dict[str, object]:
        """The marts.period_calendar row (schemas/marts/period_calendar.schema.json)."""
        d = self.start
        return {
            "month_start": d,
            "month_end": self.end,
            "month_label": f"{self.year}-{self.month:02d}",
            "quarter_label": Quarter.of(d).label,
            "half_label": f"{self.year}-H{(self.month - 1) // 6 + 1}",
            "year_label": str(self.year),
            "fiscal_year_label": fiscal_year_label(d),
            "fiscal_quarter_label": fiscal_quarter_label(d),
            "fiscal_half_label": fiscal_half_label(d),
        }


def months_between(start: date, end: date) -> list[Month]:
    """Calendar months overlapping [start, end)."""
    out, m = [], Month.of(start)
    while m.start < end:
        out.append(m)
        m = Month.of(m.end)
    return out


def quarters_between(start: date, end: date) -> list[Quarter]:
    """Quarters overlapping [start, end)."""
    out, q = [], Quarter.of(start)
    while q.start < end:
        out.append(q)
        q = q.next()
    return out


def quarter_labels(start: date, end: date) -> list[str]:
    return [q.label for q in quarters_between(start, end)]
