"""Finance feeds (DESIGN.md "Exact formats of the finance feeds"): revenue ledger, settlement
statements, contract terms, FX rates and the price sheet."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from inference_ledger.periods import Quarter
from inference_ledger.sample.allocate import allocate_cents
from inference_ledger.sample.catalog import price_rows
from inference_ledger.sample.scenario import REVSHARE_RATE, SCENARIO_QUARTERS
from inference_ledger.sample.sink import Sink, csv_bytes, money, rng_for

REVENUE_COLUMNS = (
    "entry_id", "entry_version", "revenue_date", "product_line", "amount", "currency",
    "description",
)  # fmt: skip
SETTLEMENT_COLUMNS = (
    "statement_id", "supersedes_statement_id", "agreement_id", "direction", "counterparty",
    "period_start", "period_end", "reported_basis_amount", "rate", "amount", "currency",
    "statement_date", "payment_date", "reference",
)  # fmt: skip
CONTRACT_COLUMNS = (
    "agreement_id", "direction", "counterparty", "basis", "rate", "effective_from",
    "effective_to", "cap_amount", "cap_currency", "tolerance_abs", "tolerance_pct",
    "payment_terms_days",
)  # fmt: skip
FX_COLUMNS = ("rate_date", "currency", "usd_per_unit")
COMMITMENT_COLUMNS = (
    "commitment_id", "counterparty", "amount", "currency", "start_date", "end_date",
    "eligible_services", "eligible_meters", "provider",
)  # fmt: skip
# With `commitments`: a two-year cloud consumption commitment every Azure service burns (the
# sample's whole bill), sized so that the trailing run-rate leaves a shortfall at its end.
COMMITMENT_ROWS = (
    ("MACC-MSFT-2024", "Microsoft", "25000000000.00", "USD", "2024-01-01", "2026-01-01", "*", "",
     "Microsoft"),
)  # fmt: skip
PRICE_COLUMNS = (
    "channel", "model", "token_type", "unit_tokens", "unit_price", "currency",
    "effective_from", "effective_to",
)  # fmt: skip

# (product_line, entry code, description); the first three are the payable basis.
BASIS_LINES = (
    ("chatgpt_consumer", "CONS", "ChatGPT consumer subscriptions"),
    ("chatgpt_business", "BUS", "ChatGPT Team and Enterprise seats"),
    ("api", "API", "API usage, metered"),
)
OTHER_LINE = ("licensing_other", "LIC", "Licensing and other income")
PAYABLE = ("OAI-MSFT-REVSHARE", "payable", "Microsoft", "PAY")
RECEIVABLE = ("MSFT-OAI-RESALE", "receivable", "Microsoft", "RCV")
CONTRACT_ROWS = (
    ("OAI-MSFT-REVSHARE", "payable", "Microsoft", "revenue:chatgpt_consumer|chatgpt_business|api",
     "0.20", "2023-01-01", "2031-01-01", "92000000000.00", "USD", "1000.00", "0.001", 60),
    ("MSFT-OAI-RESALE", "receivable", "Microsoft", "reported",
     "0.20", "2023-01-01", "2026-04-27", "", "", "1000.00", "0.001", 60),
)  # fmt: skip
# With `contract_changes`: the resale share drops to this rate from the 15th of the middle month
# of the middle generated quarter. A `reported` basis is charged at the rate in effect at the
# period start, so statements use it from the next quarter on; reported bases are whole
# multiples of RATE_CHANGE_BASIS_STEP then, so the share stays a whole number of cents.
CHANGED_RECEIVABLE_RATE = Decimal("0.15")
RATE_CHANGE_BASIS_STEP = Decimal("0.20")
FX_START = {"EUR": Decimal("1.0950"), "GBP": Decimal("1.2700")}
RATE6 = Decimal("0.000001")
CENT = Decimal("0.01")


@dataclass
class FinanceStats:
    revenue_rows: int = 0
    superseded_revenue_versions: int = 0
    revenue_refunds: int = 0
    settlement_rows: int = 0
    superseding_statements: int = 0
    # With `statement_chains`: statements superseded by a correction that is itself superseded.
    chained_supersessions: int = 0
    # Ground truth of the statements: quarter -> effective (final) amount and reported basis of
    # the receivable direction, and the contract rows written.
    received_usd: dict[str, Decimal] = field(default_factory=dict)
    received_basis_usd: dict[str, Decimal] = field(default_factory=dict)
    contract_rows: tuple[tuple, ...] = ()
    commitment_rows: tuple[tuple, ...] = ()


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def _restated(amount: Decimal, rng) -> Decimal:
    """An earlier, wrong version of a ledger amount: off by 1-8% either way."""
    delta = Decimal(rng.choice([-1, 1]) * rng.randint(100, 800)) / 10_000
    wrong = (amount * (1 + delta)).quantize(CENT)
    return wrong if wrong != amount else amount + CENT


def _revenue_entries(q: Quarter, q_index: int, seed: int, per_day: int):
    """(entry_id, date, product_line, final amount, description) for one quarter."""
    rng = rng_for(seed, "finance", "revenue", q.label)
    basis = SCENARIO_QUARTERS[q.label].implied_revenue_usd
    # Business seats grow their share of the basis over the range; API holds ~30%.
    line_totals = allocate_cents(basis, [56 - q_index, 14 + q_index, 30])
    days = _days(q.start, q.end)
    entries = []
    for (line, code, desc), total in zip(BASIS_LINES, line_totals, strict=True):
        refunds = []
        for month_start in (d for d in days if d.day == 1):
            month_days = [d for d in days if d.month == month_start.month]
            for k, d in enumerate(sorted(rng.sample(month_days, 2)), start=1):
                amount = -Decimal(rng.randint(500_000, 25_000_000)) / 100
                refunds.append((f"RFD-{d:%Y%m%d}-{code}-{k:02d}", d, line, amount,
                                "Refunds and chargebacks"))  # fmt: skip
        cells = [(d, k) for d in days for k in range(1, per_day + 1)]
        weights = [(10_000 + 35 * (d - q.start).days) * rng.randint(85, 115) for d, _ in cells]
        positive_total = total - sum((r[3] for r in refunds), Decimal(0))
        for (d, k), amount in zip(cells, allocate_cents(positive_total, weights), strict=True):
            entries.append((f"REV-{d:%Y%m%d}-{code}-{k:02d}", d, line, amount, desc))
        entries.extend(refunds)
    line, code, desc = OTHER_LINE
    for d in days:
        if d.weekday() == 0:  # weekly licensing postings, outside the revenue-share basis
            amount = Decimal(rng.randint(100_000_000, 300_000_000)) / 100
            entries.append((f"REV-{d:%Y%m%d}-{code}-01", d, line, amount, desc))
    entries.sort(key=lambda e: (e[1], e[0]))
    return entries


def write_revenue(sink: Sink, quarters: list[Quarter], seed: int, scale: float, stats) -> None:
    per_day = max(1, round(scale))
    all_labels = list(SCENARIO_QUARTERS)
    by_year: dict[int, tuple[list, list]] = {}
    for q in quarters:
        rng = rng_for(seed, "finance", "versions", q.label)
        for entry_id, d, line, amount, desc in _revenue_entries(
            q, all_labels.index(q.label), seed, per_day
        ):
            first, later = by_year.setdefault(d.year, ([], []))
            versions = [amount]
            # Positive entries only, so adding up every version overstates the basis.
            if amount > 0 and rng.random() < 0.04:
                versions.insert(0, _restated(amount, rng))
                if rng.random() < 0.25:
                    versions.insert(0, _restated(amount, rng))
            for v, value in enumerate(versions, start=1):
                text = desc if v == 1 else f"Restated v{v}: {desc}"
                row = (entry_id, v, d.isoformat(), line, money(value), "USD", text)
                (first if v == 1 else later).append(row)
            stats.superseded_revenue_versions += len(versions) - 1
            stats.revenue_refunds += amount < 0
    for year, (first, later) in sorted(by_year.items()):
        # Restatements are posted later, so they sit after the originals in the ledger.
        later.sort(key=lambda r: (r[2], r[0], r[1]))
        sink.write(f"finance/revenue/revenue_{year}.csv", csv_bytes(REVENUE_COLUMNS, first + later))
        stats.revenue_rows += len(first) + len(later)


def _corrected(n: int) -> tuple[set[int], set[int]]:
    """Quarter indexes whose first statement is wrong and later superseded, per direction."""
    payable = {i for i in range(n) if i % 3 == 0}
    receivable = {i for i in range(n) if i % 3 == 2} or {n - 1}
    return payable, receivable


def _statement(
    terms: tuple[str, str, str, str],
    q: Quarter,
    stmt_id: str,
    supersedes: str,
    reported: Decimal,
    days_after: int,
    reference: str,
    rate: Decimal = REVSHARE_RATE,
) -> tuple[str, ...]:
    agreement, direction, counterparty, _ = terms
    statement_date = q.end + timedelta(days=days_after)
    return (
        stmt_id, supersedes, agreement, direction, counterparty,
        q.start.isoformat(), q.end.isoformat(), money(reported), str(rate),
        money(reported * rate), "USD", statement_date.isoformat(),
        (statement_date + timedelta(days=15)).isoformat(), reference,
    )  # fmt: skip


def rate_change_date(quarters: list[Quarter]) -> date:
    """Mid-period: the 15th of the middle month of the middle generated quarter."""
    q = quarters[len(quarters) // 2]
    return date(q.start.year, q.start.month + 1, 15)


def contract_rows(quarters: list[Quarter], changes: bool) -> tuple[tuple, ...]:
    """The terms; with `changes` the receivable agreement gets a second, non-overlapping term
    at CHANGED_RECEIVABLE_RATE from `rate_change_date`."""
    if not changes:
        return CONTRACT_ROWS
    payable, receivable = CONTRACT_ROWS
    cut = rate_change_date(quarters).isoformat()
    before = receivable[:6] + (cut,) + receivable[7:]
    after = receivable[:4] + (str(CHANGED_RECEIVABLE_RATE), cut) + receivable[6:]
    return (payable, before, after)


def _rate_at(rows: tuple[tuple, ...], direction: str, day: date) -> Decimal:
    """The rate of the term in effect on `day` (the generator's own reading of its rows)."""
    for r in rows:
        start, end = date.fromisoformat(r[5]), date.fromisoformat(r[6]) if r[6] else None
        if r[1] == direction and start <= day and (end is None or day < end):
            return Decimal(r[4])
    raise ValueError(f"no {direction} term on {day}")


def write_settlements(
    sink: Sink,
    quarters: list[Quarter],
    seed: int,
    stats,
    chains: bool = False,
    terms: tuple[tuple, ...] = CONTRACT_ROWS,
) -> None:
    """One statement per quarter and direction at the rate in effect at the period start; some
    are wrong and superseded by a correction. With `chains`, the first corrected payable
    quarter's correction is wrong too and superseded again (a chain of two)."""
    rng = rng_for(seed, "finance", "settlements")
    chain_rng = rng_for(seed, "finance", "settlement-chains")
    fixed_payable, fixed_receivable = _corrected(len(quarters))
    chained = {min(fixed_payable)} if chains else set()
    files: dict[tuple[str, int], tuple[list, list]] = {}
    for i, q in enumerate(quarters):
        t = SCENARIO_QUARTERS[q.label]
        for agreement, basis, fixed, sign in (
            (PAYABLE, t.implied_revenue_usd, fixed_payable, -1),
            (RECEIVABLE, t.received_basis_usd, fixed_receivable, 1),
        ):
            direction, code = agreement[1], agreement[3]
            rate = _rate_at(terms, direction, q.start)
            if rate != REVSHARE_RATE:
                basis -= basis % RATE_CHANGE_BASIS_STEP
            originals, corrections = files.setdefault((direction, q.year), ([], []))
            sid = f"MSFT-RS-{code}-{q.year}Q{q.quarter}"
            ref = f"{code}-{q.year}Q{q.quarter}"
            if i in fixed:
                # The first statement misstates the basis (payable: revenue under-reported;
                # receivable: resale over-reported); the correction replaces it entirely.
                # Whole multiples of $5 keep the share of the error a whole number of cents.
                error = Decimal(rng.randint(1_000, 200_000) * 5) * sign
                originals.append(_statement(agreement, q, sid, "", basis + error, 30, ref, rate))
                last = sid
                if direction == "payable" and i in chained:
                    # Its own stream: the other statements stay as they are without chains.
                    again = Decimal(chain_rng.randint(1_000, 200_000) * 5) * sign
                    corrections.append(
                        _statement(agreement, q, f"{sid}-R1", sid, basis + again, 60,
                                   f"{ref}-R1", rate)
                    )  # fmt: skip
                    last = f"{sid}-R1"
                    stats.superseding_statements += 1
                    stats.chained_supersessions += 1
                n = 2 if last != sid else 1
                corrections.append(
                    _statement(agreement, q, f"{sid}-R{n}", last, basis, 75, f"{ref}-R{n}", rate)
                )
                stats.superseding_statements += 1
            else:
                originals.append(_statement(agreement, q, sid, "", basis, 30, ref, rate))
            if direction == "receivable":
                stats.received_usd[q.label] = (basis * rate).quantize(CENT)
                stats.received_basis_usd[q.label] = basis
    for (direction, year), (originals, corrections) in sorted(files.items()):
        rows = originals + corrections
        sink.write(
            f"finance/settlements/settlements_{direction}_{year}.csv",
            csv_bytes(SETTLEMENT_COLUMNS, rows),
        )
        stats.settlement_rows += len(rows)


def write_fx(sink: Sink, quarters: list[Quarter], seed: int) -> None:
    """Daily rates for every calendar day, a month before to a quarter after the range
    (settlement and payment dates run past the last quarter)."""
    rng = rng_for(seed, "finance", "fx")
    start = quarters[0].start - timedelta(days=31)
    end = quarters[-1].end + timedelta(days=92)
    rates = dict(FX_START)
    by_year: dict[int, list] = {}
    for d in _days(start, end):
        rows = by_year.setdefault(d.year, [])
        rows.append((d.isoformat(), "USD", "1.000000"))
        for cur in sorted(rates):
            step = Decimal(rng.randint(-3000, 3000)) / 1_000_000
            anchor = FX_START[cur]
            # Mean-reverting walk: stays within a plausible band around the anchor.
            rates[cur] = (rates[cur] + step + (anchor - rates[cur]) / 50).quantize(RATE6)
            rows.append((d.isoformat(), cur, str(rates[cur])))
    for year, rows in sorted(by_year.items()):
        sink.write(f"finance/fx/fx_{year}.csv", csv_bytes(FX_COLUMNS, rows))


def write_contracts_and_prices(sink: Sink, terms: tuple[tuple, ...] = CONTRACT_ROWS) -> None:
    sink.write("finance/contracts/contracts.csv", csv_bytes(CONTRACT_COLUMNS, terms))
    rows = [
        (ch, model, tt, units, str(price), cur, frm.isoformat(), to.isoformat() if to else "")
        for ch, model, tt, units, price, cur, frm, to in price_rows()
    ]
    sink.write("finance/prices/prices.csv", csv_bytes(PRICE_COLUMNS, rows))


def write_finance(
    sink: Sink,
    quarters: list[Quarter],
    seed: int,
    scale: float,
    *,
    statement_chains: bool = False,
    contract_changes: bool = False,
    commitments: bool = False,
) -> FinanceStats:
    stats = FinanceStats()
    if commitments:
        stats.commitment_rows = COMMITMENT_ROWS
        sink.write(
            "finance/commitments/commitments.csv", csv_bytes(COMMITMENT_COLUMNS, COMMITMENT_ROWS)
        )
    terms = contract_rows(quarters, contract_changes)
    stats.contract_rows = terms
    write_revenue(sink, quarters, seed, scale, stats)
    write_settlements(sink, quarters, seed, stats, statement_chains, terms)
    write_fx(sink, quarters, seed)
    write_contracts_and_prices(sink, terms)
    return stats
