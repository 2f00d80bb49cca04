"""Apply sql/NNN_description.sql in order, once each, recorded in audit.schema_migrations.

Each migration runs in its own transaction together with its bookkeeping row, so it is applied
entirely or not at all. An applied migration is immutable: if its file changes, or disappears,
migrate() stops and names it (add a new migration instead). Concurrent callers queue on a
session-level advisory lock, and the second finds nothing left to do.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import extensions
from sqlalchemy.engine import URL

from inference_ledger.db.connection import connection
from inference_ledger.resources import resource_dir

log = logging.getLogger(__name__)

# Any fixed bigint; it only has to differ from the other advisory locks of the pipeline.
MIGRATION_LOCK_KEY = 0x4C45_4447_4552_0001  # "LEDGER" + 1

_FILENAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

# The ledger of migrations has to exist before the first migration can be recorded in it.
_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.schema_migrations (
    version          integer PRIMARY KEY,
    filename         text NOT NULL UNIQUE,
    checksum_sha256  text NOT NULL,
    applied_at       timestamptz NOT NULL DEFAULT now()
);
"""


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    filename: str
    sql: str
    checksum_sha256: str


def discover(sql_dir: Path | None = None) -> list[Migration]:
    """The migrations in sql_dir (default: the package's sql/), in version order."""
    folder = sql_dir or resource_dir("sql")
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        m = _FILENAME.match(path.name)
        if not m:
            # A misnamed file would otherwise be skipped silently.
            raise MigrationError(f"{path.name}: migrations are named NNN_description.sql")
        version = int(m.group(1))
        if version in found:
            raise MigrationError(
                f"{path.name}: version {version} also used by {found[version].filename}"
            )
        data = path.read_bytes()
        found[version] = Migration(
            version, path.name, data.decode("utf-8"), hashlib.sha256(data).hexdigest()
        )
    return [found[v] for v in sorted(found)]


def migrate(
    target: str | URL | extensions.connection | None = None, *, sql_dir: Path | None = None
) -> list[str]:
    """Apply pending migrations to a URL or an idle psycopg2 connection; return their filenames."""
    migrations = discover(sql_dir)
    if not isinstance(target, extensions.connection):
        with connection(target) as conn:
            return _migrate(conn, migrations)
    status = target.info.transaction_status
    if status != extensions.TRANSACTION_STATUS_IDLE:
        # We commit per migration; committing the caller's open work would be a surprise.
        raise MigrationError("migrate() needs a connection with no transaction in progress")
    return _migrate(target, migrations)


def _migrate(conn, migrations: list[Migration]) -> list[str]:
    autocommit = conn.autocommit
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
            conn.commit()
        try:
            return _apply_pending(conn, migrations)
        finally:
            if not conn.closed:  # a dead session's lock is released by the server
                conn.rollback()
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
                conn.commit()
    finally:
        if not conn.closed:
            conn.autocommit = autocommit


def _apply_pending(conn, migrations: list[Migration]) -> list[str]:
    with conn.cursor() as cur:
        # Even IF NOT EXISTS needs CREATE on the database; a later run may lack it.
        cur.execute("SELECT to_regclass('audit.schema_migrations') IS NULL")
        if cur.fetchone()[0]:
            cur.execute(_BOOTSTRAP)
        cur.execute("SELECT version, filename, checksum_sha256 FROM audit.schema_migrations")
        applied = {version: (filename, checksum) for version, filename, checksum in cur}
    conn.commit()

    on_disk = {m.version: m for m in migrations}
    for version, (filename, checksum) in sorted(applied.items()):
        m = on_disk.get(version)
        if m is None:
            raise MigrationError(f"{filename} is applied to this database but missing on disk")
        if m.filename != filename:
            raise MigrationError(f"{m.filename}: version {version} was applied as {filename}")
        if m.checksum_sha256 != checksum:
            raise MigrationError(
                f"{filename} changed after it was applied (sha256 {checksum} in the database, "
                f"{m.checksum_sha256} on disk); add a new migration instead of editing it"
            )

    done: list[str] = []
    for m in migrations:
        if m.version in applied:
            continue
        try:
            with conn.cursor() as cur:
                # Recorded first, in the same transaction: the file may SET ROLE away from us.
                cur.execute(
                    "INSERT INTO audit.schema_migrations (version, filename, checksum_sha256)"
                    " VALUES (%s, %s, %s)",
                    (m.version, m.filename, m.checksum_sha256),
                )
                if m.sql.strip():
                    cur.execute(m.sql)
            conn.commit()
        except psycopg2.Error as exc:
            conn.rollback()
            raise MigrationError(f"{m.filename} failed: {exc}".strip()) from exc
        log.info("applied migration %s", m.filename)
        done.append(m.filename)
    return done
