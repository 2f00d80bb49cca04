"""Bulk-load Spark's CSV output with COPY (never row-at-a-time INSERTs).

Spark's CSV writer and Postgres' CSV COPY agree on NULL (an empty unquoted field) versus the
empty string (`""`), so both survive the trip. Spark must write with `.option("escape", '"')`:
its default escape is a backslash (`"a\\"b"`), which CSV COPY would misread; with `"` it writes
`"a""b"` like any CSV. Decimals arrive as text and land in NUMERIC exactly (no float on the way).

Neither function commits: the caller owns the transaction (load, audit, then publish or roll back).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

from psycopg2 import sql


def copy_csv(
    conn, schema: str, table: str, columns: list[str], files: Iterable[Path], *, header: bool
) -> int:
    """COPY each CSV file (plain or .gz) into schema.table's columns; return the rows loaded.

    With header=True the header must name exactly `columns`, in order (HEADER MATCH), so a
    reordered Spark output fails instead of loading one column into another.
    """
    statement = sql.SQL("COPY {}.{} ({}) FROM STDIN WITH (FORMAT csv, HEADER {}, ENCODING 'UTF8')")
    query = statement.format(
        sql.Identifier(schema),
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL("MATCH" if header else "false"),
    )
    loaded = 0
    with conn.cursor() as cur:
        for path in files:
            opener = gzip.open if str(path).endswith(".gz") else open
            with opener(path, "rb") as fh:
                cur.copy_expert(query, fh)
            loaded += cur.rowcount
    return loaded


def truncate(conn, schema: str, table: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql.SQL("TRUNCATE {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))


def spark_csv_parts(folder: Path) -> list[Path]:
    """The data files of a Spark CSV output folder (skips _SUCCESS and .crc files)."""
    return sorted(p for p in Path(folder).glob("part-*") if not p.name.endswith(".crc"))
