"""Models served per period and their per-1M-token list prices (the finance price sheet).

The usage generator only emits a model on days it is available, and prices the partner's
resale usage with these same rows, so every usage row has a price in effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

CHANNELS = ("azure_openai", "openai")
TOKEN_TYPES = ("input", "cached_input", "output")
UNIT_TOKENS = 1_000_000
PRICE_SHEET_START = date(2023, 1, 1)


@dataclass(frozen=True)
class PricePeriod:
    effective_from: date
    input: Decimal
    cached_input: Decimal
    output: Decimal

    def by_type(self, token_type: str) -> Decimal:
        return {"input": self.input, "cached_input": self.cached_input, "output": self.output}[
            token_type
        ]


@dataclass(frozen=True)
class Model:
    name: str
    available_from: date
    retired_from: date | None  # exclusive
    traffic_weight: int  # relative share of tokens once ramped up
    batch: bool  # offered on the Batch API
    prices: tuple[PricePeriod, ...]  # ascending; each runs until the next starts

    def available(self, day: date) -> bool:
        return self.available_from <= day and (self.retired_from is None or day < self.retired_from)

    def price_on(self, day: date) -> PricePeriod:
        current = [p for p in self.prices if p.effective_from <= day]
        if not current:
            raise ValueError(f"no price for {self.name} on {day}")
        return current[-1]


def _p(start: date, inp: str, cached: str, out: str) -> PricePeriod:
    return PricePeriod(start, Decimal(inp), Decimal(cached), Decimal(out))


# Launch dates and prices follow the public list prices closely enough to be plausible; the
# price cuts on gpt-4o, o1-mini and o3 are the mid-range price changes the pipeline must date.
MODELS: tuple[Model, ...] = (
    Model("gpt-3.5-turbo", PRICE_SHEET_START, date(2024, 10, 1), 20, True,
          (_p(PRICE_SHEET_START, "0.50", "0.50", "1.50"),)),
    Model("gpt-4-turbo", PRICE_SHEET_START, date(2025, 1, 1), 35, True,
          (_p(PRICE_SHEET_START, "10.00", "10.00", "30.00"),)),
    Model("gpt-4o", date(2024, 5, 13), None, 70, True,
          (_p(date(2024, 5, 13), "5.00", "5.00", "15.00"),
           _p(date(2024, 10, 1), "2.50", "1.25", "10.00"))),
    Model("gpt-4o-mini", date(2024, 7, 18), None, 50, True,
          (_p(date(2024, 7, 18), "0.15", "0.075", "0.60"),)),
    Model("o1-mini", date(2024, 9, 12), date(2025, 7, 1), 12, False,
          (_p(date(2024, 9, 12), "3.00", "1.50", "12.00"),
           _p(date(2025, 2, 1), "1.10", "0.55", "4.40"))),
    Model("o1", date(2024, 12, 17), None, 15, True,
          (_p(date(2024, 12, 17), "15.00", "7.50", "60.00"),)),
    Model("o3-mini", date(2025, 1, 31), None, 15, True,
          (_p(date(2025, 1, 31), "1.10", "0.55", "4.40"),)),
    Model("gpt-4.1", date(2025, 4, 14), None, 45, True,
          (_p(date(2025, 4, 14), "2.00", "0.50", "8.00"),)),
    Model("o3", date(2025, 4, 16), None, 20, True,
          (_p(date(2025, 4, 16), "10.00", "2.50", "40.00"),
           _p(date(2025, 6, 10), "2.00", "0.50", "8.00"))),
    Model("gpt-5", date(2025, 8, 7), None, 60, True,
          (_p(date(2025, 8, 7), "1.25", "0.125", "10.00"),)),
)  # fmt: skip


def models_on(day: date) -> list[Model]:
    return [m for m in MODELS if m.available(day)]


def price_rows() -> list[tuple[str, str, str, int, Decimal, str, date, date | None]]:
    """(channel, model, token_type, unit_tokens, unit_price, currency, from, to) rows.

    Both channels list the same prices: the partner resells at the provider's list price.
    """
    rows = []
    for channel in CHANNELS:
        for model in sorted(MODELS, key=lambda m: m.name):
            for token_type in TOKEN_TYPES:
                periods = model.prices
                for i, period in enumerate(periods):
                    to = periods[i + 1].effective_from if i + 1 < len(periods) else None
                    price = period.by_type(token_type)
                    rows.append(
                        (channel, model.name, token_type, UNIT_TOKENS, price, "USD",
                         period.effective_from, to)
                    )  # fmt: skip
    return rows
