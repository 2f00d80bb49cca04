"""Session-level Postgres advisory locks, taken the one way the ledger takes them: try first,
and when another session holds the lock, say so (a run that waits looks like one that hangs)
before waiting for it. The lock goes with its session, so a killed holder releases it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from inference_ledger.db.connection import connection

log = logging.getLogger(__name__)


def take(cur, key: int, waiting: str) -> None:
    """Take advisory lock `key` in the cursor's session, logging `waiting` if it must wait."""
    cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
    if not cur.fetchone()[0]:
        log.warning(waiting)
        cur.execute("SELECT pg_advisory_lock(%s)", (key,))


@contextmanager
def advisory_lock(url: str, key: int, waiting: str) -> Iterator[None]:
    """Hold advisory lock `key` for the block, in a session of its own."""
    with connection(url, autocommit=True) as conn, conn.cursor() as cur:
        take(cur, key, waiting)
        yield
