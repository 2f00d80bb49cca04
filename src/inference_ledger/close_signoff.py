"""Close is a sign-off: what blocks a period's close (its reconciliation exceptions and failed
critical data-quality results), how a sign-off that accepts them is given, and the message that
refuses a close nobody signed off. `close` uses these and re-exports them."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

# What blocks a close: the period's reconciliation exceptions (sql/015; adjustment rows count
# in the period they are posted into) and the failed critical data-quality results its figures
# rest on (sql/014). Ordered so the message and the recorded list read the same every time.
EXCEPTIONS_SQL = """SELECT agreement_id, direction, is_adjustment, adjustment_of_period, status,
       expected_usd, settled_usd, variance_usd, tolerance_usd, payment_due_date
FROM marts.reconciliation_exceptions WHERE period_label = %s
ORDER BY is_adjustment, agreement_id, direction"""
DQ_FAILURES_SQL = """SELECT run_id, suite, expectation, column_name, check_name, observed_value
FROM marts.period_data_quality
WHERE period_label = %s AND severity = 'critical' AND NOT success
ORDER BY suite, expectation, column_name, check_name, run_id"""
OVERRIDE_HINT = (
    'ledger close --period {period} --accept-exceptions --reason "why they are accepted" '
    "(close DAG: params accept_exceptions=true and reason)"
)


class SignoffUsageError(ValueError):
    """--accept-exceptions and --reason given other than together (a usage error)."""


class CloseRefused(ValueError):
    """The period has exceptions or failed critical checks and nobody accepted them."""

    def __init__(self, period: str, blockers: Blockers):
        self.period, self.blockers = period, blockers
        super().__init__(refusal_message(period, blockers))


@dataclass(frozen=True)
class Blockers:
    """What stands between a period and its close; each row a dict of text (exact decimals)."""

    exceptions: list[dict] = field(default_factory=list)
    dq_failures: list[dict] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.exceptions or self.dq_failures)


def signoff_reason(
    accept_exceptions: bool,
    reason: str | None,
    names: tuple[str, str] = ("--accept-exceptions", "--reason"),
) -> str | None:
    """The sign-off reason, stripped; refuses a reason without --accept-exceptions and
    --accept-exceptions without a (non-blank) reason (`names`: how the caller spells them)."""
    accept, why = names
    text = (reason or "").strip()
    if accept_exceptions and not text:
        raise SignoffUsageError(f"{accept} needs {why}: why the exceptions are accepted")
    if reason is not None and not accept_exceptions:
        raise SignoffUsageError(f"{why} goes with {accept} (a clean close needs no reason)")
    return text or None


def _rows(cur, query: str, period: str) -> list[dict]:
    cur.execute(query, (period,))
    names = [d[0] for d in cur.description]
    return [
        {
            k: v if v is None or isinstance(v, bool) else str(v)
            for k, v in zip(names, r, strict=True)
        }
        for r in cur.fetchall()
    ]


def close_blockers(conn, period: str) -> Blockers:
    with conn.cursor() as cur:
        return Blockers(_rows(cur, EXCEPTIONS_SQL, period), _rows(cur, DQ_FAILURES_SQL, period))


def _usd(value: str | None) -> str:
    """Exact: cents when the amount is whole cents, every significant place otherwise."""
    if value is None:
        return "none"
    amount = Decimal(value)
    cents = amount.quantize(Decimal("0.01"))
    return f"{cents:,}" if cents == amount else f"{amount.normalize():,f}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def blocker_lines(blockers: Blockers) -> list[str]:
    out = []
    for e in blockers.exceptions:
        what = f"{e['agreement_id']} {e['direction']}"
        if e["is_adjustment"]:
            what += f" (adjustment of {e['adjustment_of_period']})"
        variance = e["variance_usd"]
        amounts = [f"expected {_usd(e['expected_usd'])}", f"settled {_usd(e['settled_usd'])}"]
        if e["tolerance_usd"] is not None:  # adjustment rows carry no tolerance nor due date
            amounts.append(f"tolerance {_usd(e['tolerance_usd'])}")
        if e["payment_due_date"] is not None:
            amounts.append(f"due {e['payment_due_date']}")
        out.append(
            f"  exception: {what}: {e['status']}, variance "
            + (f"{_usd(variance)} USD" if variance is not None else "none")
            + f" ({', '.join(amounts)})"
        )
    for d in blockers.dq_failures:
        on = f" on {d['column_name']}" if d["column_name"] else ""
        out.append(
            f"  failed critical check: {d['suite']} {d['expectation']}{on}"
            f" (check {d['check_name'] or 'none'}, run {d['run_id']}): observed {d['observed_value']}"
        )
    return out


def blocker_summary(blockers: Blockers) -> str:
    parts = []
    if blockers.exceptions:
        parts.append(_plural(len(blockers.exceptions), "open reconciliation exception"))
    if blockers.dq_failures:
        parts.append(_plural(len(blockers.dq_failures), "failed critical data-quality check"))
    return " and ".join(parts) or "nothing to accept"


def refusal_message(period: str, blockers: Blockers) -> str:
    return "\n".join(
        [
            f"period {period} cannot be closed: it has {blocker_summary(blockers)}",
            *blocker_lines(blockers),
            "fix them and publish again, or close it anyway with a recorded sign-off: "
            + OVERRIDE_HINT.format(period=period),
        ]
    )
