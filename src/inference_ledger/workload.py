"""Workload classification of billing lines from the versioned rules file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

DEFAULT_RULES = Path(__file__).resolve().parent / "config" / "workload_rules.yaml"
WORKLOADS = ("inference", "training", "other")
RULE_FIELDS = ("resource_group", "resource_id", "service_name", "sku_description", "region_name")


@dataclass(frozen=True)
class WorkloadRules:
    version: int
    default: str
    rules: list[dict[str, Any]]

    @classmethod
    def load(cls, path: Path | None = None) -> WorkloadRules:
        path = path or DEFAULT_RULES
        doc = yaml.safe_load(path.read_text())
        rules = doc.get("rules") or []
        for rule in rules:
            rid = rule.get("id")
            if not rid:
                raise ValueError(f"{path}: every rule needs an id")
            if "tag" in rule:
                bad = set(rule.get("values", [])) - set(WORKLOADS)
            elif rule.get("field") in RULE_FIELDS and rule.get("pattern"):
                bad = {rule.get("workload")} - set(WORKLOADS)
            else:
                raise ValueError(
                    f"{path}: rule {rid} needs `tag` or `field` ({RULE_FIELDS}) + `pattern`"
                )
            if bad:
                raise ValueError(f"{path}: rule {rid}: unknown workload(s) {sorted(bad)}")
        return cls(int(doc.get("version", 0)), doc.get("default", "other"), rules)


def _rule_match(rule: dict[str, Any], tags: Column) -> tuple[Column, Column]:
    """(condition, workload) of one rule."""
    if "tag" in rule:
        value = F.lower(F.trim(tags.getItem(rule["tag"])))
        return value.isin(*rule["values"]), value
    return F.coalesce(F.col(rule["field"]).rlike(rule["pattern"]), F.lit(False)), F.lit(
        rule["workload"]
    )


def with_workload(df: DataFrame, rules: WorkloadRules, tags_col: str = "tags") -> DataFrame:
    """Add `workload` and `workload_rule` (the id of the first matching rule, or `default`)."""
    # Parsed once into a column: referenced inside every rule's CASE branch, the expression
    # would be parsed again per reference and row.
    df = df.withColumn("_tags_map", F.from_json(F.col(tags_col), "map<string,string>"))
    tags = F.col("_tags_map")
    workload: Column = F.lit(rules.default)
    rule_id: Column = F.lit("default")
    for rule in reversed(rules.rules):
        cond, value = _rule_match(rule, tags)
        workload = F.when(cond, value).otherwise(workload)
        rule_id = F.when(cond, F.lit(rule["id"])).otherwise(rule_id)
    return (
        df.withColumn("workload", workload).withColumn("workload_rule", rule_id).drop("_tags_map")
    )
