"""The Postgres layer: connections, the embedded server, migrations, COPY loading.

Everything takes or returns a SQLAlchemy-style URL; `database_url()` is LEDGER_DATABASE_URL
when set, else the embedded server of LEDGER_HOME (started on first use, then reused).
"""

from inference_ledger.db.connection import (
    connect,
    connect_params,
    connection,
    database_url,
    redact,
    sqlalchemy_engine,
)
from inference_ledger.db.copy import copy_parquet, truncate
from inference_ledger.db.embedded import ensure_embedded, is_embedded_running, stop_embedded
from inference_ledger.db.migrate import MigrationError, migrate

__all__ = [
    "MigrationError",
    "connect",
    "connect_params",
    "connection",
    "copy_parquet",
    "database_url",
    "ensure_embedded",
    "is_embedded_running",
    "migrate",
    "redact",
    "sqlalchemy_engine",
    "stop_embedded",
    "truncate",
]
