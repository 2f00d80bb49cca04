"""Bulk loading with COPY (never row-at-a-time INSERTs): CSV files (`copy_csv`), or a Parquet
folder streamed through Arrow (`copy_parquet`, what staging and the quarantine use).

Spark's CSV writer and Postgres' CSV COPY agree on NULL (an empty unquoted field) versus the
empty string (`""`), so both survive the trip. Spark must write with `.option("escape", '"')`:
its default escape is a backslash (`"a\\"b"`), which CSV COPY would misread; with `"` it writes
`"a""b"` like any CSV. Decimals arrive as text and land in NUMERIC exactly (no float on the way).

Neither function commits: the caller owns the transaction (load, audit, then publish or roll back).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
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


class _ChunkReader:
    """A file object over an iterator of byte chunks: COPY pulls the next batch's CSV only
    when it has sent the last, so memory holds one batch whatever the table's size. psycopg2
    sends whatever one read() returns, so a whole chunk is handed over without copying."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks

    def read(self, size: int = -1) -> bytes:
        return next(self._chunks, b"")

    readline = read


def copy_parquet(
    conn,
    schema: str,
    table: str,
    columns: list[str],
    path: Path | str,
    constants: dict[str, str] | None = None,
    renamed: dict[str, str] | None = None,
) -> int:
    """COPY a Parquet folder (a Spark output: part files, `_SUCCESS`) into schema.table's
    `columns`, streamed batch by batch: Arrow reads it, Arrow's CSV writer formats it, COPY
    parses it. No Spark job and no intermediate files. Columns are taken by name, so a
    reordered file cannot load one column into another; `constants` fills columns the files
    do not have (e.g. the run id); `renamed` maps a table column to the file's name for it.
    Every string is quoted, so an empty string stays an empty string and only a missing value
    is NULL. Decimals are written in full
    (`0E-10` for a zero at scale 10, which NUMERIC reads as 0)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds

    constants = constants or {}
    name_in_file = {c: (renamed or {}).get(c, c) for c in columns if c not in constants}
    dataset = ds.dataset(str(path), format="parquet", partitioning="hive")
    from_files = list(name_in_file.values())
    missing = [c for c in from_files if c not in dataset.schema.names]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing} to load into {schema}.{table}")
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")

    def chunks() -> Iterator[bytes]:
        for batch in dataset.to_batches(columns=from_files):
            if batch.num_rows == 0:
                continue
            arrays = [
                pa.array([constants[c]] * batch.num_rows, pa.string())
                if c in constants
                else batch.column(name_in_file[c])
                for c in columns
            ]
            sink = pa.BufferOutputStream()
            pacsv.write_csv(pa.RecordBatch.from_arrays(arrays, names=columns), sink, options)
            yield sink.getvalue().to_pybytes()

    query = sql.SQL("COPY {}.{} ({}) FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')").format(
        sql.Identifier(schema),
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
    )
    with conn.cursor() as cur:
        cur.copy_expert(query, _ChunkReader(chunks()), size=1 << 20)
        return cur.rowcount


def truncate(conn, schema: str, table: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql.SQL("TRUNCATE {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))


def spark_csv_parts(folder: Path) -> list[Path]:
    """The data files of a Spark CSV output folder (skips _SUCCESS and .crc files)."""
    return sorted(p for p in Path(folder).glob("part-*") if not p.name.endswith(".crc"))
