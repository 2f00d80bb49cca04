"""Real-Postgres fixtures: the embedded server of the test run's LEDGER_HOME, migrated.

The code under test finds the server exactly as the CLI does (LEDGER_DATABASE_URL unset, so
`database_url()` starts or reuses the embedded one); the fixture only hands out its URL.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def pg_url(ledger_home):
    from inference_ledger.db import database_url, migrate, stop_embedded
    from inference_ledger.settings import load_settings

    # Tests exercise the embedded default, and must never write to a configured database.
    configured = os.environ.pop("LEDGER_DATABASE_URL", None)
    settings = load_settings()
    url = database_url(settings)
    migrate(url)
    yield url
    # The server outlives its starter by design; a test run must not leave one behind.
    stop_embedded(settings)
    if configured is not None:
        os.environ["LEDGER_DATABASE_URL"] = configured


@pytest.fixture
def pg_conn(pg_url):
    """A fresh connection per test; closing it rolls back whatever the test left uncommitted."""
    from inference_ledger.db import connect

    conn = connect(pg_url)
    # Staging keeps the last run's batch (useful after a failed gate); tests start from an
    # empty one. Committed at once so no lock is held while the code under test stages.
    with conn.cursor() as cur:
        cur.execute(
            "SELECT string_agg(format('%I.%I', table_schema, table_name), ', ')"
            " FROM information_schema.tables WHERE table_schema = 'staging'"
        )
        tables = cur.fetchone()[0]
        if tables:
            cur.execute(f"TRUNCATE {tables}")
    conn.commit()
    yield conn
    conn.close()
