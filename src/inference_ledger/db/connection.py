"""One database URL for everything: LEDGER_DATABASE_URL if set, else the embedded Postgres.

URLs are SQLAlchemy URLs (`postgresql+psycopg2://user:pw@host:5432/db`, or a Unix socket as
`postgresql+psycopg2://user@/db?host=/socket/dir&port=5432`). They may carry a password, so
anything logged goes through `redact()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
from sqlalchemy.engine import URL, Engine, make_url

from inference_ledger.settings import Settings, load_settings

APPLICATION_NAME = "inference-ledger"


def database_url(settings: Settings | None = None) -> str:
    settings = settings or load_settings()
    if settings.database_url:
        return settings.database_url
    from inference_ledger.db.embedded import ensure_embedded

    return ensure_embedded(settings)


def redact(url: str | URL) -> str:
    return make_url(url).render_as_string(hide_password=True)


def connect_params(url: str | URL) -> dict[str, Any]:
    """psycopg2/libpq keyword arguments for a SQLAlchemy URL (the driver part is ignored)."""
    u = make_url(url)
    if u.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {redact(u)}")
    params: dict[str, Any] = {
        key: value
        for key, value in {
            "dbname": u.database,
            "user": u.username,
            "password": u.password,
            "host": u.host,
            "port": u.port,
        }.items()
        if value is not None
    }
    # Query parameters are libpq keywords (host=/socket/dir, port, sslmode, options, ...);
    # a repeated one is libpq's comma-separated multi-host form.
    for key, value in u.query.items():
        params[key] = ",".join(value) if isinstance(value, tuple) else value
    params.setdefault("application_name", APPLICATION_NAME)
    params["options"] = _with_utc(params.get("options"))
    return params


def _with_utc(options: str | None) -> str:
    # Timestamps are UTC end to end (the Spark session too): pin the session time zone so
    # `::date` and `date_trunc` agree with Spark whatever the server's default.
    if not options:
        return "-c TimeZone=UTC"
    return options if "timezone" in options.lower() else f"{options} -c TimeZone=UTC"


def connect(url: str | URL | None = None):
    """A new psycopg2 connection (autocommit off); the caller commits and closes it."""
    return psycopg2.connect(**connect_params(url or database_url()))


@contextmanager
def connection(url: str | URL | None = None, *, autocommit: bool = False) -> Iterator[Any]:
    """A connection for the block: committed when the block ends, rolled back if it raises,
    closed either way. With `autocommit` every statement commits on its own (locks, reads)."""
    conn = connect(url)
    conn.autocommit = autocommit
    try:
        yield conn
        if not autocommit:
            conn.commit()
    except BaseException:
        if not autocommit and not conn.closed:
            conn.rollback()
        raise
    finally:
        conn.close()


def sqlalchemy_engine(url: str | URL | None = None, **kwargs: Any) -> Engine:
    """An Engine (for Great Expectations) whose connections come from `connect()`."""
    from sqlalchemy import create_engine

    # SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3, which is not installed.
    u = make_url(url or database_url()).set(drivername="postgresql+psycopg2")
    return create_engine(u, creator=lambda: connect(u), pool_pre_ping=True, **kwargs)
