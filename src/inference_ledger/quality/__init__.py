"""Data quality as the gate: Great Expectations suites on the lake tables (Spark) and on the
staged marts (Postgres), severities and thresholds from config/quality.yaml, every result in
audit.dq_results and a Data Docs site per run. See docs/quality.md.

The step hooks live in `quality.gate` (it imports `audit`, which imports this package)."""

from inference_ledger.quality.config import QualityConfig, QualityConfigError
from inference_ledger.quality.results import (
    CheckResult,
    QualityGateFailed,
    critical_failures,
    warnings_of,
)

__all__ = [
    "CheckResult",
    "QualityConfig",
    "QualityConfigError",
    "QualityGateFailed",
    "critical_failures",
    "warnings_of",
]
