"""The run store: the one owner of a ledger run's state, whichever driver runs it (the `ledger`
CLI, a `spark-submit` job, an Airflow task, the benchmark).

- the run's row in `audit.runs`: recorded once (`open`), its range once known (`record_aggregate`),
  finished once (`finish`; a second finish is refused, so one task can never overwrite what
  another concluded);
- what its aggregate decided (the range, the closed periods it assumed), in `audit.runs`, for
  its publish step and report;
- the billing months its ingest could not load (`record_failed_months` / `failed_months`), in
  `audit.run_failed_months`, so a later step in another process fails the run naming them;
- the lake lock (`lake_lock`): a run ingests or aggregates only while no other run writes the
  lake, whether the other is a CLI run, an ingest DAG's job or the nightly DAG's.

All of it is in the database: a step that only publishes (the nightly DAG's publish task)
needs no Spark session to read it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from psycopg2.errors import UndefinedTable

from inference_ledger import audit
from inference_ledger.db import connection, migrate
from inference_ledger.db.locks import advisory_lock

# Runs share the lake (whole tables and month partitions are rewritten, Spark's `_temporary`
# folders would collide). Publishing has its own lock (publish.PUBLISH_LOCK_KEY), shared with
# close and reopen.
LAKE_LOCK_KEY = 7_420_002
WAITING = "another run is in progress on this ledger; waiting for it to finish"


class RunStateError(RuntimeError):
    """A run asked to do what its recorded state forbids (finish twice, resume a finished run)."""


@dataclass(frozen=True)
class RunStore:
    url: str
    run_id: str

    # ------------------------------------------------------------------ audit.runs

    def open(
        self,
        command: str,
        landing: str | None,
        spark_master: str,
        start: date | None,
        end: date | None,
        as_of: date | None,
    ) -> bool:
        """Record the run as running, once: the first driver to open it (Airflow's `prepare`
        task, the CLI, a stand-alone `spark-submit` job) records it and migrates the database;
        a later job of the same run finds it there. True when this call recorded it. A run
        already finished cannot be opened again."""
        status = self.status()
        if status is None:
            migrate(self.url)
            with connection(self.url) as conn:
                audit.start_run(
                    conn, self.run_id, command, landing, spark_master, start, end, as_of=as_of
                )
            return True
        if status != "running":
            raise RunStateError(f"run {self.run_id} is already {status}: start a new run")
        return False

    def status(self) -> str | None:
        with connection(self.url) as conn, conn.cursor() as cur:
            try:
                cur.execute("SELECT status FROM audit.runs WHERE run_id = %s", (self.run_id,))
            except UndefinedTable:  # a database never migrated
                return None
            row = cur.fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ what aggregate decided

    def record_aggregate(self, start: date, end: date, closed: list[str]) -> None:
        """What the run's aggregate decided, in one statement: the quarters its marts cover
        (audit.runs period_start / period_end; publish, the report and the operator read them)
        and the periods closed when it aggregated (publish refuses to go ahead if periods were
        closed or reopened since)."""
        with connection(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE audit.runs SET period_start = %s, period_end = %s,"
                " closed_periods_used = %s WHERE run_id = %s",
                (start, end, sorted(closed), self.run_id),
            )

    def range(self) -> tuple[date, date]:
        """The run's range as its aggregate recorded it (before that: as the run was opened)."""
        with connection(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT period_start, period_end FROM audit.runs WHERE run_id = %s",
                (self.run_id,),
            )
            row = cur.fetchone()
        if not row or row[0] is None:
            raise RunStateError(f"ledger run {self.run_id} has no period in audit.runs")
        return row[0], row[1]

    def closed_periods_used(self) -> list[str] | None:
        """The closed periods the run's aggregate worked with (None: not recorded)."""
        with connection(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT closed_periods_used FROM audit.runs WHERE run_id = %s", (self.run_id,)
            )
            row = cur.fetchone()
        return None if not row or row[0] is None else list(row[0])

    # ------------------------------------------------------------------ the end of the run

    def finish(self, error: str | None = None) -> None:
        """Mark the run succeeded (or failed with `error`), once."""
        with connection(self.url) as conn:
            finished = audit.finish_run(conn, self.run_id, error)
        if not finished:
            raise RunStateError(
                f"run {self.run_id} is not running (already finished, or never recorded):"
                " not finished again"
            )

    # ------------------------------------------------------------------ failed months

    def record_failed_months(self, failed: dict[str, list[str]]) -> None:
        """Kept with the run (replacing what an earlier try recorded), so its publish step,
        maybe in another process, fails the run naming them."""
        rows = [(self.run_id, m, ", ".join(v[:3])) for m, v in sorted(failed.items())]
        with connection(self.url) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM audit.run_failed_months WHERE run_id = %s", (self.run_id,))
            cur.executemany(
                "INSERT INTO audit.run_failed_months (run_id, billing_month, reason)"
                " VALUES (%s, %s, %s)",
                rows,
            )

    def failed_months(self) -> list[tuple[str, str]]:
        with connection(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT billing_month, reason FROM audit.run_failed_months WHERE run_id = %s"
                " ORDER BY billing_month",
                (self.run_id,),
            )
            return [tuple(r) for r in cur.fetchall()]

    @staticmethod
    def failed_months_error(failed: list[tuple[str, str]]):
        """The run's failure (an InputError) naming each month left out and why."""
        from inference_ledger.ingest.records import InputError

        return InputError(
            "billing: month(s) not loaded: " + "; ".join(f"{m}: {why}" for m, why in failed)
        )

    # ------------------------------------------------------------------ the lake lock

    def lake_lock(self):
        return lake_lock(self.url)


_held = threading.local()


@contextmanager
def lake_lock(url: str) -> Iterator[None]:
    """Hold the ledger's lake lock for the block; another run waits for it, saying so.

    A session-level Postgres advisory lock: a killed run's lock goes with its connection.
    Re-entrant within a thread, so a whole CLI run and each of its steps take the same lock;
    two threads (two runs in one process) still wait for each other."""
    depth = getattr(_held, "depth", {})
    _held.depth = depth
    if depth.get(url):
        depth[url] += 1
        try:
            yield
        finally:
            depth[url] -= 1
        return
    with advisory_lock(url, LAKE_LOCK_KEY, WAITING):
        depth[url] = 1
        try:
            yield
        finally:
            depth[url] = 0
