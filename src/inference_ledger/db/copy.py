"""Bulk loading with COPY (never row-at-a-time INSERTs): a Parquet folder streamed through
Arrow (`copy_parquet`, what staging and the quarantine use). Decimals arrive as text and land in
NUMERIC exactly (no float on the way).

It does not commit: the caller owns the transaction (load, audit, then publish or roll back).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg2
from psycopg2 import sql


class _Prefetched:
    """A file object for COPY FROM STDIN over byte chunks made in a background thread, at
    most `depth` ahead: Arrow reads and formats the next batch (outside the GIL) while COPY
    sends the last and Postgres parses it, and memory holds a few batches whatever the table's
    size. psycopg2 sends whatever one read() returns, so a chunk is handed over whole. An error
    while making chunks is raised from read(), which aborts the COPY."""

    _END = object()

    def __init__(self, chunks: Iterator[bytes], depth: int = 2):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._produce, args=(chunks,), daemon=True)
        self._thread.start()

    def _produce(self, chunks: Iterator[bytes]) -> None:
        try:
            for chunk in chunks:
                if not self._put(chunk):
                    return
            self._put(self._END)
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
            self._put(exc)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read(self, size: int = -1) -> bytes:
        if self._done:
            return b""
        item = self._queue.get()
        if item is self._END:
            self._done = True
            return b""
        if isinstance(item, BaseException):
            self._done = True
            self.error = item
            raise item
        return item

    readline = read

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


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
    parses it, the formatting of one batch overlapping the COPY of the last. No Spark job and
    no intermediate files. Columns are taken by name, so a
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
    source = _Prefetched(chunks())
    try:
        with conn.cursor() as cur:
            cur.copy_expert(query, source, size=1 << 20)
            return cur.rowcount
    except psycopg2.Error:
        # psycopg2 reports a failed read() as a cancelled COPY; the cause is the reader's.
        if source.error is not None:
            raise source.error from None
        raise
    finally:
        source.close()


def truncate(conn, schema: str, table: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql.SQL("TRUNCATE {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))
