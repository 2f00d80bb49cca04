"""Exact splitting of totals (largest-remainder method), so generated parts sum to targets."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal


def allocate_int(total: int, weights: Sequence[int]) -> list[int]:
    """Split integer `total` proportionally to non-negative integer `weights`, summing exactly.

    Leftover units go to the largest remainders; ties go to the earlier index, which keeps the
    result a pure function of its inputs.
    """
    if not weights:
        raise ValueError("cannot allocate over zero weights")
    if any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative")
    wsum = sum(weights)
    if wsum == 0:
        raise ValueError("weights sum to zero")
    sign, amount = (-1, -total) if total < 0 else (1, total)
    parts = [amount * w // wsum for w in weights]
    remainders = [amount * w % wsum for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[: amount - sum(parts)]:
        parts[i] += 1
    return [sign * p for p in parts]


def to_cents(amount: Decimal) -> int:
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of cents")
    return int(cents)


def from_cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def allocate_cents(total: Decimal, weights: Sequence[int]) -> list[Decimal]:
    """Split a 2-decimal amount into 2-decimal parts that sum to it exactly."""
    return [from_cents(c) for c in allocate_int(to_cents(total), weights)]
