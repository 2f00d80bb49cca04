"""The gate's settings: severities and thresholds from config/quality.yaml, typed and checked."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config" / "quality.yaml"
SEVERITIES = ("critical", "warning")
# check name -> the thresholds it takes (name -> type).
CHECKS: dict[str, dict[str, type]] = {
    "keys": {},
    "required": {},
    "currency_iso": {},
    "amount_bounds": {"max_abs_amount": Decimal},
    "token_bounds": {"max_tokens": int},
    "cached_within_input": {},
    "charge_in_billing_period": {},
    "control_totals": {},
    "reconciliation_arithmetic": {},
    "status_values": {},
    "settlement_status": {},
    "quarantine_rate": {"max_rate": Decimal},
    "freshness": {"max_lag_days": int, "reference": str},
    "spend_jump": {"max_factor": Decimal},
}
FRESHNESS_REFERENCES = ("data", "as_of")


class QualityConfigError(ValueError):
    pass


@dataclass(frozen=True)
class QualityConfig:
    severities: MappingProxyType
    max_abs_amount: Decimal
    max_tokens: int
    max_quarantine_rate: Decimal
    max_freshness_lag_days: int
    freshness_reference: str
    max_spend_factor: Decimal
    source: str = "built-in"

    def severity(self, check: str) -> str:
        return self.severities[check]

    @classmethod
    def load(cls, path: Path | None = None) -> QualityConfig:
        path = path or DEFAULT_PATH
        doc = yaml.safe_load(Path(path).read_text()) or {}
        checks = doc.get("checks")
        if not isinstance(checks, dict):
            raise QualityConfigError(f"{path}: a `checks` mapping is required")
        missing = sorted(set(CHECKS) - set(checks))
        unknown = sorted(set(checks) - set(CHECKS))
        if missing or unknown:
            raise QualityConfigError(
                f"{path}: checks missing {missing or 'none'}, unknown {unknown or 'none'}"
            )
        values: dict[str, Any] = {}
        severities = {}
        for name, spec in checks.items():
            spec = spec or {}
            severity = spec.get("severity")
            if severity not in SEVERITIES:
                raise QualityConfigError(
                    f"{path}: checks.{name}.severity must be one of {SEVERITIES}, got {severity!r}"
                )
            severities[name] = severity
            extra = sorted(set(spec) - {"severity"} - set(CHECKS[name]))
            if extra:
                raise QualityConfigError(f"{path}: checks.{name}: unknown setting(s) {extra}")
            for key, kind in CHECKS[name].items():
                if key not in spec:
                    raise QualityConfigError(f"{path}: checks.{name}.{key} is required")
                values[key] = _typed(path, f"checks.{name}.{key}", spec[key], kind)
        if values["reference"] not in FRESHNESS_REFERENCES:
            raise QualityConfigError(
                f"{path}: checks.freshness.reference must be one of {FRESHNESS_REFERENCES}"
            )
        if values["max_rate"] < 0 or values["max_factor"] <= 1 or values["max_lag_days"] < 0:
            raise QualityConfigError(
                f"{path}: need max_rate >= 0, max_factor > 1 and max_lag_days >= 0"
            )
        return cls(
            severities=MappingProxyType(severities),
            max_abs_amount=values["max_abs_amount"],
            max_tokens=values["max_tokens"],
            max_quarantine_rate=values["max_rate"],
            max_freshness_lag_days=values["max_lag_days"],
            freshness_reference=values["reference"],
            max_spend_factor=values["max_factor"],
            source=str(path),
        )


def _typed(path, where: str, value: Any, kind: type):
    # Decimals are written as strings in YAML so no float ever carries a threshold.
    if kind is Decimal:
        if isinstance(value, float):
            raise QualityConfigError(f"{path}: {where} must be quoted (exact decimal)")
        try:
            return Decimal(str(value))
        except InvalidOperation as exc:
            raise QualityConfigError(f"{path}: {where} is not a decimal: {value!r}") from exc
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise QualityConfigError(f"{path}: {where} must be an integer, got {value!r}")
        return value
    if not isinstance(value, str):
        raise QualityConfigError(f"{path}: {where} must be text, got {value!r}")
    return value
