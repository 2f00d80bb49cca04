"""The gate's settings: severities and thresholds from config/quality.yaml, typed and checked."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from inference_ledger import contracts

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config" / "quality.yaml"
SEVERITIES = ("critical", "warning")
# check name -> the thresholds it takes (name -> type); their rules are in
# schemas/config/quality.schema.json.
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

    def meta(self, check: str, **extra) -> dict:
        """An expectation's `meta`: the configured check it belongs to and that check's severity."""
        return {"check": check, "severity": self.severity(check), **extra}

    @classmethod
    def load(cls, path: Path | None = None) -> QualityConfig:
        path = path or DEFAULT_PATH
        doc = yaml.safe_load(Path(path).read_text()) or {}
        problems = schema_problems(doc)
        if problems:
            raise QualityConfigError(f"{path}: " + "; ".join(problems))
        checks = doc["checks"]
        values: dict[str, Any] = {
            key: Decimal(str(spec[key])) if kind is Decimal else spec[key]
            for name, spec in checks.items()
            for key, kind in CHECKS[name].items()
        }
        # Relations between values JSON Schema cannot state on decimal strings.
        if values["max_factor"] <= 1:
            raise QualityConfigError(f"{path}: checks.spend_jump.max_factor must be > 1")
        return cls(
            severities=MappingProxyType({n: spec["severity"] for n, spec in checks.items()}),
            max_abs_amount=values["max_abs_amount"],
            max_tokens=values["max_tokens"],
            max_quarantine_rate=values["max_rate"],
            max_freshness_lag_days=values["max_lag_days"],
            freshness_reference=values["reference"],
            max_spend_factor=values["max_factor"],
            source=str(path),
        )


def schema_problems(doc: Any) -> list[str]:
    """What breaks schemas/config/quality.schema.json, each naming its setting."""
    validator = Draft202012Validator(contracts.load_schema("config", "quality"))
    out = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":
            missing = sorted(k for k in error.validator_value if k not in error.instance)
            out.append(f"{where or 'the file'}: missing {missing}")
        elif error.validator == "additionalProperties":
            known = error.schema.get("properties", {})
            unknown = sorted(k for k in error.instance if k not in known)
            out.append(f"{where or 'the file'}: unknown setting(s) {unknown}")
        else:
            why = error.schema.get("x-message", error.message)
            out.append(f"{where} {why}, got {error.instance!r}")
    return out
