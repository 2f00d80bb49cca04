"""Bulk loading with COPY (never row-at-a-time INSERTs): a Parquet folder streamed through
Arrow (`copy_parquet`, what staging and the quarantine use), in Postgres' binary COPY format
where every column has an exact binary form (`db.pgcopy`), else as CSV. Decimals land in
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

from inference_ledger.db import pgcopy
from inference_ledger.ingest.remote import filesystem, is_remote


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


class _Inline:
    """_Prefetched's interface without the thread, for a folder too small to overlap anything
    (the marts: tens of rows, one chunk): a thread there is only a start and two hand-offs,
    each a wait for a time slice on a loaded machine."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            return next(self._chunks, b"")
        except BaseException as exc:
            self.error = exc
            raise

    readline = read

    def close(self) -> None:
        pass


# Below this many bytes of Parquet a folder is read and written in COPY's own thread.
INLINE_BYTES = 1 << 20


def parquet_dataset(path: Path | str):
    """The Parquet folder at `path` as an Arrow dataset: a local path, or a lake on object
    storage (`LEDGER_LAKE_URI`: `s3a://` / `s3://` through s3fs, `abfss://` / `abfs://` / `az://`
    through adlfs), opened with the environment's credentials as the landings are
    (ingest/remote.py). Arrow's own URI parsing knows no `s3a://`, the scheme Spark writes the
    lake with."""
    import pyarrow.dataset as ds

    text = str(path)
    if not is_remote(text):
        return ds.dataset(text, format="parquet", partitioning="hive")
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, root = filesystem(text)
    return ds.dataset(
        root, filesystem=PyFileSystem(FSSpecHandler(fs)), format="parquet", partitioning="hive"
    )


def copy_parquet(
    conn,
    schema: str,
    table: str,
    columns: list[str],
    path: Path | str,
    constants: dict[str, str] | None = None,
    renamed: dict[str, str] | None = None,
    *,
    binary: bool | None = None,
) -> int:
    """COPY a Parquet folder (a Spark output: part files, `_SUCCESS`) into schema.table's
    `columns`, streamed batch by batch: Arrow reads it, each batch is written in Postgres'
    binary COPY format (`db.pgcopy`) or, for a column type it has no exact binary form for, as
    CSV by Arrow's CSV writer (`binary`: None picks binary for folders of INLINE_BYTES or
    more, True whenever possible, False never); the writing of one batch overlaps the COPY of
    the last. No Spark job and no intermediate files. Columns are taken by name, so a
    reordered file cannot load one column into another; `constants` fills columns the files
    do not have (e.g. the run id); `renamed` maps a table column to the file's name for it.
    NULL and empty string stay apart; decimals stay exact (no float on the way). An error
    names the table: Postgres' own says which row and column, one raised while reading or
    writing a batch gets a note."""
    constants = constants or {}
    name_in_file = {c: (renamed or {}).get(c, c) for c in columns if c not in constants}
    dataset = parquet_dataset(path)
    from_files = list(name_in_file.values())
    missing = [c for c in from_files if c not in dataset.schema.names]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing} to load into {schema}.{table}")
    sizes = dataset.filesystem.get_file_info(dataset.files)
    small = sum(info.size for info in sizes) < INLINE_BYTES
    if binary is None:
        # Binary saves the server its parsing, per row; on tens of rows its fixed cost (the
        # catalog query, ~100 Arrow calls a batch) is more than that: 9 mart-sized tables
        # took ~2x as long as CSV.
        binary = not small
    steps = (
        _binary_plan(conn, schema, table, columns, dataset.schema, name_in_file, constants)
        if binary
        else None
    )
    batches = dataset.to_batches(columns=from_files, use_threads=False)
    if steps is None:
        chunks, fmt = _csv_chunks(batches, columns, name_in_file, constants), "csv"
    else:
        chunks, fmt = _binary_chunks(batches, steps, columns, name_in_file), "binary"
    query = sql.SQL("COPY {}.{} ({}) FROM STDIN WITH (FORMAT {})").format(
        sql.Identifier(schema),
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(fmt if fmt == "binary" else "csv, ENCODING 'UTF8'"),
    )
    source = _Inline(chunks) if small else _Prefetched(chunks)
    try:
        with conn.cursor() as cur:
            cur.copy_expert(query, source, size=1 << 20)
            return cur.rowcount
    except psycopg2.Error:
        # psycopg2 reports a failed read() as a cancelled COPY; the cause is the reader's.
        if source.error is not None:
            source.error.add_note(f"while copying {path} into {schema}.{table}")
            raise source.error from None
        raise
    finally:
        source.close()


def _binary_plan(conn, schema, table, columns, file_schema, name_in_file, constants):
    """pgcopy's steps for the table's column types, or None (then CSV): the types come from the
    catalog, and text is sent as UTF-8 only if that is the client encoding."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT a.attname, a.atttypid::regtype::text, current_setting('TimeZone'),
                      current_setting('client_encoding')
               FROM pg_attribute a
               WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped""",
            (sql.Identifier(schema, table).as_string(cur),),
        )
        found = cur.fetchall()
    types = {name: pg_type for name, pg_type, _, _ in found}
    if not found or any(c not in types for c in columns) or found[0][3] != "UTF8":
        return None
    return pgcopy.plan(
        [None if c in constants else file_schema.field(name_in_file[c]).type for c in columns],
        [types[c] for c in columns],
        [constants.get(c) for c in columns],
        utc_session=found[0][2] in ("UTC", "Etc/UTC"),
    )


def _binary_chunks(batches, steps, columns, name_in_file) -> Iterator[bytes]:
    yield pgcopy.HEADER
    for batch in batches:
        if batch.num_rows:
            arrays = [batch.column(name_in_file[c]) if c in name_in_file else None for c in columns]
            yield pgcopy.rows(steps, arrays, batch.num_rows)
    yield pgcopy.TRAILER


def _csv_chunks(batches, columns, name_in_file, constants) -> Iterator[bytes]:
    """Every string quoted where needed, numbers bare; decimals written in full (`0E-10` for a
    zero at scale 10, which NUMERIC reads as 0)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    for batch in batches:
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


def truncate(conn, schema: str, *tables: str) -> None:
    """Empty the tables in one statement (one round trip and one lock pass for all of them)."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("TRUNCATE {}").format(
                sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables)
            )
        )
