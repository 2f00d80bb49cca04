"""Workload classification of billing lines from the versioned rules file.

A rule is one of:
- `tag` + `values`: the resource tag's value (lowercased) names the workload;
- `field` + `pattern` + `workload`: a Java regex on one canonical column;
- `when` + `workload`: every condition holds. A condition is `<field>: {<operator>: <value>}`:
  `in` / `startswith` / `endswith` take a list of strings and compare case-insensitively on
  the trimmed value (no regex: cheap at millions of lines); `pattern` is a Java regex;
  `present: true|false` asks for a non-empty / empty value.
Rules are tried in order; the first match sets `workload` and its id `workload_rule`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

DEFAULT_RULES = Path(__file__).resolve().parent / "config" / "workload_rules.yaml"
WORKLOADS = ("inference", "training", "other")
RULE_FIELDS = (
    "resource_group", "resource_id", "service_name", "sku_description", "region_name",
    "service_category", "service_subcategory", "consumed_unit", "model_id", "token_direction",
    "sku_id", "provider_name", "charge_category",
)  # fmt: skip
LIST_OPERATORS = ("in", "startswith", "endswith")
OPERATORS = (*LIST_OPERATORS, "pattern", "present")


def _check_condition(where: str, field: str, cond: Any) -> None:
    if field not in RULE_FIELDS:
        raise ValueError(f"{where}: unknown field {field!r} (one of {RULE_FIELDS})")
    if not isinstance(cond, dict) or len(cond) != 1:
        raise ValueError(f"{where}: {field} needs exactly one of {OPERATORS}")
    [(op, value)] = cond.items()
    if op in LIST_OPERATORS:
        ok = isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)
    elif op == "pattern":
        ok = isinstance(value, str) and bool(value)
        if ok:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{where}: {field}: bad pattern ({exc})") from exc
    elif op == "present":
        ok = isinstance(value, bool)
    else:
        raise ValueError(f"{where}: {field}: unknown operator {op!r} (one of {OPERATORS})")
    if not ok:
        what = "a list of non-empty strings" if op in LIST_OPERATORS else "a string"
        raise ValueError(
            f"{where}: {field}.{op} must be {'true/false' if op == 'present' else what}"
        )


def _check_rule(path: Path, rule: Any) -> None:
    rid = rule.get("id") if isinstance(rule, dict) else None
    if not rid:
        raise ValueError(f"{path}: every rule needs an id")
    where = f"{path}: rule {rid}"
    if "tag" in rule:
        bad = set(rule.get("values") or []) - set(WORKLOADS)
        if not rule.get("values"):
            raise ValueError(f"{where}: a tag rule needs `values`")
    elif "when" in rule:
        when = rule["when"]
        if not isinstance(when, dict) or not when:
            raise ValueError(f"{where}: `when` needs at least one condition")
        for field, cond in when.items():
            _check_condition(where, field, cond)
        bad = {rule.get("workload")} - set(WORKLOADS)
    elif rule.get("field") in RULE_FIELDS and rule.get("pattern"):
        bad = {rule.get("workload")} - set(WORKLOADS)
    else:
        raise ValueError(f"{where} needs `tag`, `when`, or `field` ({RULE_FIELDS}) + `pattern`")
    if bad:
        raise ValueError(f"{where}: unknown workload(s) {sorted(map(str, bad))}")


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
            _check_rule(path, rule)
        if doc.get("default", "other") not in WORKLOADS:
            raise ValueError(f"{path}: default must be one of {WORKLOADS}")
        return cls(int(doc.get("version", 0)), doc.get("default", "other"), rules)

    def folded_fields(self) -> list[str]:
        """Fields some rule compares with in/startswith/endswith (folded once per row)."""
        return sorted(
            {
                f
                for r in self.rules
                for f, cond in (r.get("when") or {}).items()
                if next(iter(cond)) in LIST_OPERATORS
            }
        )


def _folded(field: str) -> str:
    return f"_wl_{field}"


def _condition(field: str, cond: dict[str, Any]) -> Column:
    [(op, value)] = cond.items()
    if op == "present":
        present = F.col(field).isNotNull() & (F.trim(F.col(field)) != "")
        return present if value else ~present
    if op == "pattern":
        return pattern_match(field, value)
    folded = F.col(_folded(field))
    values = [v.strip().lower() for v in value]
    if op == "in":
        return folded.isin(*values)
    test = folded.startswith if op == "startswith" else folded.endswith
    out = test(values[0])
    for v in values[1:]:
        out = out | test(v)
    return out


def _rule_match(rule: dict[str, Any], tags: Column) -> tuple[Column, Column]:
    """(condition, workload) of one rule."""
    if "tag" in rule:
        value = F.lower(F.trim(tags.getItem(rule["tag"])))
        return value.isin(*rule["values"]), value
    if "when" in rule:
        conds = [_condition(f, c) for f, c in rule["when"].items()]
        cond = conds[0]
        for c in conds[1:]:
            cond = cond & c
        return F.coalesce(cond, F.lit(False)), F.lit(rule["workload"])
    return F.coalesce(pattern_match(rule["field"], rule["pattern"]), F.lit(False)), F.lit(
        rule["workload"]
    )


# Case-insensitive patterns of plain words, matched without a regex. Java's `(?i)` folds ASCII
# only, so a lowered value equals a lowered ASCII literal where the regex matches, except for
# the two characters Java lowers into ASCII: U+212A (Kelvin, -> k) and U+0130 (-> i + U+0307).
# A literal with a `k` is not rewritten; a prefix may not end in `i`. `$` also matches before a
# final line terminator, so whole-value alternatives are compared with those appended too.
_WORDS = r"[A-Za-z0-9 _-]+"
_PREFIX = re.compile(rf"\(\?i\)\^({_WORDS})")
_WHOLE = re.compile(rf"\(\?i\)\^\(({_WORDS}(?:\|{_WORDS})*)\)\$")
_CONTAINS = re.compile(rf"\(\?i\)({_WORDS})")
_LINE_ENDS = ("", "\n", "\r\n", "\r", "\u0085", "\u2028", "\u2029")


def pattern_match(field: str, pattern: str) -> Column:
    """`field` RLIKE `pattern`, by startswith / isin / contains on the lowered value where
    the pattern is a case-insensitive plain prefix, whole value or word (same answer, no regex
    per row); a plain word that could meet a Kelvin sign is only a pre-filter to the regex."""
    col, lowered = F.col(field), F.lower(F.col(field))
    m = _PREFIX.fullmatch(pattern)
    if m and "k" not in m.group(1).lower() and not m.group(1).lower().endswith("i"):
        return lowered.startswith(m.group(1).lower())
    m = _WHOLE.fullmatch(pattern)
    if m and "k" not in m.group(1).lower():
        words = m.group(1).lower().split("|")
        return lowered.isin(*[w + end for w in words for end in _LINE_ENDS])
    m = _CONTAINS.fullmatch(pattern)
    if m:
        return lowered.contains(m.group(1).lower()) & col.rlike(pattern)
    return col.rlike(pattern)


def with_workload(
    df: DataFrame, rules: WorkloadRules, tags_col: str = "tags", tags_map: str | None = None
) -> DataFrame:
    """Add `workload` and `workload_rule` (the id of the first matching rule, or `default`).
    `tags_map`: a column already holding the tags parsed as map<string,string> (then
    `tags_col` is not parsed again)."""
    # Parsed once into a column: referenced inside every rule's CASE branch, the expression
    # would be parsed again per reference and row. Likewise the folded (trimmed, lowercased)
    # text of each field compared by in/startswith/endswith.
    parsed = F.col(tags_map) if tags_map else F.from_json(F.col(tags_col), "map<string,string>")
    folded = rules.folded_fields()
    df = df.withColumns(
        {"_tags_map": parsed, **{_folded(f): F.lower(F.trim(F.col(f))) for f in folded}}
    )
    tags = F.col("_tags_map")
    workload: Column = F.lit(rules.default)
    rule_id: Column = F.lit("default")
    for rule in reversed(rules.rules):
        cond, value = _rule_match(rule, tags)
        workload = F.when(cond, value).otherwise(workload)
        rule_id = F.when(cond, F.lit(rule["id"])).otherwise(rule_id)
    return df.withColumns({"workload": workload, "workload_rule": rule_id}).drop(
        "_tags_map", *[_folded(f) for f in folded]
    )
