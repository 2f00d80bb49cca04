"""What a check produced, and the gate's verdict: GX validation results -> CheckResult rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class CheckResult:
    suite: str
    expectation: str
    column_name: str | None
    severity: str
    success: bool
    observed_value: str
    details: dict
    check_name: str | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def label(self) -> str:
        target = f"({self.column_name})" if self.column_name else ""
        return f"{self.suite}: {self.check_name or '-'} {self.expectation}{target}"


class QualityGateFailed(RuntimeError):
    """A critical expectation failed: nothing is published, and the run fails naming them."""

    def __init__(self, failures: list[CheckResult]):
        self.failures = failures
        names = "; ".join(f"{f.label} observed {f.observed_value}" for f in failures)
        super().__init__(f"data-quality gate failed, nothing published: {names}")


def critical_failures(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.severity == "critical" and not r.success]


def warnings_of(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.severity == "warning" and not r.success]


def from_validation(suite_name: str, outcome, checked_at: datetime) -> list[CheckResult]:
    """One CheckResult per expectation of a GX ExpectationSuiteValidationResult."""
    out = []
    for r in outcome.results:
        cfg = r.expectation_config
        meta = cfg.meta or {}
        kwargs = cfg.kwargs or {}
        res = r.result or {}
        errors = exception_messages(r.exception_info)
        observed = res.get("observed_value")
        if observed is None:
            observed = res.get("unexpected_count")
        if observed is None and r.success:
            observed = 0  # a BOOLEAN_ONLY pass of a row-level expectation: no unexpected row
        if errors:
            observed = "error: " + errors[0].splitlines()[0]
        out.append(
            CheckResult(
                suite=suite_name,
                expectation=cfg.type,
                column_name=kwargs.get("column")
                or meta.get("column")
                or ",".join(kwargs.get("column_list") or [])
                or None,
                severity=meta.get("severity", "critical"),
                # An expectation that raised is a failure, whatever GX says about success.
                success=bool(r.success) and not errors,
                observed_value=str(observed),
                details={
                    "description": cfg.description,
                    "unexpected_count": res.get("unexpected_count"),
                    "partial_unexpected_list": [
                        str(x) for x in (res.get("partial_unexpected_list") or [])[:5]
                    ],
                    "exceptions": errors,
                },
                check_name=meta.get("check"),
                checked_at=checked_at,
            )
        )
    return out


def exception_messages(info) -> list[str]:
    """GX 1.x reports errors either flat or keyed by the metric that raised them."""
    if not isinstance(info, dict):
        return []
    if info.get("raised_exception"):
        return [str(info.get("exception_message"))]
    return [
        str(v.get("exception_message"))
        for v in info.values()
        if isinstance(v, dict) and v.get("raised_exception")
    ]
