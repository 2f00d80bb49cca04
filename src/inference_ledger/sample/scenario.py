"""The public-figures scenario: per calendar quarter, what the pipeline must reproduce."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from inference_ledger.periods import Quarter

CENT = Decimal("0.01")
# Both directions share 20%; the payable basis is therefore paid / 0.20 to the cent.
REVSHARE_RATE = Decimal("0.20")


@dataclass(frozen=True)
class QuarterTargets:
    """Exact USD figures one calendar quarter of sample data adds up to."""

    inference_spend_usd: Decimal
    revshare_paid_usd: Decimal
    revshare_received_usd: Decimal
    implied_revenue_usd: Decimal  # paid / rate: the provider's basis revenue
    received_basis_usd: Decimal  # received / rate: the partner's reported resale revenue
    training_spend_usd: Decimal
    other_spend_usd: Decimal


def _targets(spend: str, paid: str, received: str, training_ratio: str) -> QuarterTargets:
    spend_d, paid_d, received_d = Decimal(spend), Decimal(paid), Decimal(received)
    return QuarterTargets(
        inference_spend_usd=spend_d,
        revshare_paid_usd=paid_d,
        revshare_received_usd=received_d,
        implied_revenue_usd=(paid_d / REVSHARE_RATE).quantize(CENT),
        received_basis_usd=(received_d / REVSHARE_RATE).quantize(CENT),
        training_spend_usd=(spend_d * Decimal(training_ratio)).quantize(CENT),
        other_spend_usd=(spend_d * Decimal("0.05")).quantize(CENT),
    )


# Spend and paid are the public figures; received and the training share are invented but
# plausible (resale revenue growing ~5x over the range, training a falling share of inference).
SCENARIO_QUARTERS: dict[str, QuarterTargets] = {
    "2024-Q1": _targets("546800000.00", "77300000.00", "8215432.18", "0.60"),
    "2024-Q2": _targets("748300000.00", "109500000.00", "11073905.42", "0.58"),
    "2024-Q3": _targets("1005000000.00", "139200000.00", "14586220.96", "0.55"),
    "2024-Q4": _targets("1467000000.00", "167800000.00", "18940117.35", "0.52"),
    "2025-Q1": _targets("2320000000.00", "210000000.00", "24318764.09", "0.50"),
    "2025-Q2": _targets("2700000000.00", "244700000.00", "31205558.72", "0.47"),
    "2025-Q3": _targets("3650000000.00", "411100000.00", "39874412.64", "0.44"),
}


def quarter_range(start: str, end: str) -> list[Quarter]:
    """Inclusive range of scenario quarters; anything outside the table is an error."""
    first, last = Quarter.parse(start), Quarter.parse(end)
    if last < first:
        raise ValueError(f"end {end!r} is before start {start!r}")
    out, q = [], first
    while q <= last:
        if q.label not in SCENARIO_QUARTERS:
            known = ", ".join(SCENARIO_QUARTERS)
            raise ValueError(f"quarter {q.label} has no scenario targets (known: {known})")
        out.append(q)
        q = q.next()
    return out
