"""JSON Schema contracts in `schemas/` and the Spark / Postgres types derived from them.

Type convention (see schemas/README.md): strings with `format: decimal` and `x-decimal:
[precision, scale]` are exact decimals; `format: date` / `date-time` are dates / UTC
timestamps; `integer` is a 64-bit integer; a type list containing "null" is nullable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from inference_ledger.resources import resource_dir


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # string | decimal | date | timestamp | integer | boolean | object | array
    nullable: bool
    precision: int | None = None
    scale: int | None = None

    @property
    def postgres_type(self) -> str:
        return {
            "string": "text",
            "date": "date",
            "timestamp": "timestamp with time zone",
            "integer": "bigint",
            "boolean": "boolean",
        }.get(self.kind) or f"numeric({self.precision},{self.scale})"


@cache
def load_schema(kind: str, name: str) -> dict[str, Any]:
    """kind is `inputs`, `lake`, `marts` or `config`."""
    path = resource_dir("schemas") / kind / f"{name}.schema.json"
    return json.loads(path.read_text())


def schema_names(kind: str) -> list[str]:
    folder = resource_dir("schemas") / kind
    return sorted(p.name.removesuffix(".schema.json") for p in folder.glob("*.schema.json"))


def _column(name: str, spec: dict[str, Any], required: bool) -> Column:
    types = spec.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    nullable = "null" in types or not required
    base = next((t for t in types if t != "null"), "string")
    fmt = spec.get("format")
    if base == "string" and fmt == "decimal":
        precision, scale = spec["x-decimal"]
        return Column(name, "decimal", nullable, precision, scale)
    if base == "string" and fmt == "date":
        return Column(name, "date", nullable)
    if base == "string" and fmt == "date-time":
        return Column(name, "timestamp", nullable)
    if base == "number":
        raise ValueError(f"column {name}: JSON 'number' is not allowed; money is exact decimal")
    return Column(name, base, nullable)


def columns(kind: str, name: str) -> list[Column]:
    """Flat columns of a tabular contract, in the schema's declared order."""
    schema = load_schema(kind, name)
    required = set(schema.get("required", []))
    return [_column(n, spec, n in required) for n, spec in schema["properties"].items()]


def required_columns(kind: str, name: str) -> list[str]:
    return list(load_schema(kind, name).get("required", []))


def primary_key(name: str) -> list[str]:
    return list(load_schema("marts", name)["x-primary-key"])


def is_staged(name: str) -> bool:
    """Marts the pipeline computes, stages and publishes by period; `x-staged: false` marks one
    the publish step writes itself (marts.period_calendar), with no staging twin."""
    return bool(load_schema("marts", name).get("x-staged", True))


def renamed_columns(name: str) -> dict[str, str]:
    """{former name: current name} of a mart's renamed columns (`x-renamed-from`)."""
    props = load_schema("marts", name)["properties"]
    return {spec["x-renamed-from"]: col for col, spec in props.items() if "x-renamed-from" in spec}


def period_column(name: str) -> str:
    return load_schema("marts", name)["x-period-column"]


def spark_type(col: Column):
    from pyspark.sql import types as T

    return {
        "string": T.StringType(),
        "date": T.DateType(),
        "timestamp": T.TimestampType(),
        "integer": T.LongType(),
        "boolean": T.BooleanType(),
    }.get(col.kind) or T.DecimalType(col.precision, col.scale)


def spark_schema(kind: str, name: str):
    """The Spark StructType of a lake or mart contract."""
    from pyspark.sql import types as T

    return T.StructType(
        [T.StructField(c.name, spark_type(c), c.nullable) for c in columns(kind, name)]
    )


def _resolved(spec: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """A node's local `$ref` (`#/properties/...`) followed within its document."""
    ref = spec.get("$ref")
    if not ref:
        return spec
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return _resolved(node, root)


def spark_type_of(spec: dict[str, Any], name: str = "value", root: dict[str, Any] | None = None):
    """Spark type of a (possibly nested) JSON Schema node, for JSON inputs."""
    from pyspark.sql import types as T

    root = spec if root is None else root
    spec = _resolved(spec, root)
    types = spec.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    base = next((t for t in types if t != "null"), "string")
    if base == "object":
        return T.StructType(
            [
                T.StructField(n, spark_type_of(s, n, root), True)
                for n, s in spec.get("properties", {}).items()
            ]
        )
    if base == "array":
        return T.ArrayType(spark_type_of(spec.get("items", {}), name, root), True)
    return spark_type(_column(name, spec, False))


def spark_nested_schema(kind: str, name: str):
    """StructType of a JSON document contract; every field nullable so bad input can be seen."""
    return spark_type_of(load_schema(kind, name))
