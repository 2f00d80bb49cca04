"""The run store (run/store.py): a run is recorded once, with one start and one finish, and the
lake lock keeps any two drivers -- the CLI, the ingest DAG's job, the nightly DAG's jobs --
from writing the lake at once."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import date

import pytest

from inference_ledger.run import LAKE_LOCK_KEY, RunStateError, RunStore, lake_lock
from tests.reliability_support import (
    AS_OF,
    generate_small,
    isolated_ledger,
    query,
    subprocess_env,
)

RUN_ROW = "SELECT status, started_at, finished_at, error, command FROM audit.runs"


def _lake_waiters(url) -> int:
    return query(
        url,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s",
        (LAKE_LOCK_KEY,),
    )[0][0]


def _until(condition, what: str, timeout: float = 600) -> None:
    """A guard against hanging, not a timing assertion: a loaded machine is slow."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.2)


def test_a_run_is_opened_once_and_finished_once(pg_url, tmp_path):
    with isolated_ledger(pg_url, tmp_path / "home", "store") as url:
        store = RunStore(url, "run-store-test")
        span = (date(2024, 1, 1), date(2024, 4, 1))
        # The DAG's prepare task opens the run; its spark-submit job opens it again.
        assert store.open("airflow:ledger_ingest_billing/r1", "/landing", "local[2]", *span,
                          as_of=AS_OF) is True  # fmt: skip
        (first,) = query(url, RUN_ROW)
        assert store.open("spark-submit", "/landing", "spark://m:7077", *span, as_of=AS_OF) is False
        assert query(url, RUN_ROW) == [first]  # one row, one start, the first driver's
        assert first[0] == "running" and first[2] is None

        store.finish()
        (done,) = query(url, RUN_ROW)
        assert (done[0], done[1], done[3]) == ("succeeded", first[1], None)
        assert done[2] is not None
        # A later task cannot overwrite how the run ended, nor reopen it.
        with pytest.raises(RunStateError, match="not running"):
            store.finish(error="publish failed")
        with pytest.raises(RunStateError, match="already succeeded"):
            store.open("spark-submit", "/landing", "local[2]", *span, as_of=AS_OF)
        assert query(url, RUN_ROW) == [done]
        assert query(url, "SELECT count(*) FROM audit.runs") == [(1,)]


def test_what_a_step_leaves_for_the_next_is_in_the_database(pg_url, tmp_path):
    """Range, closed periods and failed months are read back by another process' step (the
    nightly DAG's publish task) without Spark: they live in audit tables, per run."""
    with isolated_ledger(pg_url, tmp_path / "home", "state") as url:
        store = RunStore(url, "run-state-test")
        other = RunStore(url, "run-state-other")
        for s in (store, other):
            s.open("ledger run", "/landing", "local[2]", date(2024, 2, 1), date(2024, 2, 2), AS_OF)
        # Before the aggregate: the range asked for, no closed periods recorded.
        assert store.range() == (date(2024, 2, 1), date(2024, 2, 2))
        assert store.closed_periods_used() is None
        assert store.failed_months() == []

        store.record_aggregate(date(2024, 1, 1), date(2024, 4, 1), ["2023-Q4", "2023-Q3"])
        store.record_failed_months(
            {"2024-02": ["no FX rate to USD for EUR on 2024-02-03"] * 4, "2024-01": ["x"]}
        )
        assert store.range() == (date(2024, 1, 1), date(2024, 4, 1))
        assert store.closed_periods_used() == ["2023-Q3", "2023-Q4"]
        assert store.failed_months() == [
            ("2024-01", "x"),
            ("2024-02", ", ".join(["no FX rate to USD for EUR on 2024-02-03"] * 3)),
        ]
        # A retried ingest replaces what the failed try recorded; other runs are untouched.
        other.record_failed_months({"2024-03": ["y"]})
        store.record_failed_months({})
        assert store.failed_months() == []
        assert other.failed_months() == [("2024-03", "y")]
        store.record_aggregate(date(2024, 1, 1), date(2024, 7, 1), [])
        assert store.closed_periods_used() == []
        assert store.range() == (date(2024, 1, 1), date(2024, 7, 1))


def test_the_lake_lock_is_reentrant_in_a_thread_and_exclusive_between_threads(pg_url, tmp_path):
    with isolated_ledger(pg_url, tmp_path / "home", "lock") as url:
        events: list[str] = []
        with lake_lock(url):
            with lake_lock(url):  # a run's step inside the whole run: no self-deadlock
                events.append("inner")

            def other_run():
                with lake_lock(url):
                    events.append("other")

            other = threading.Thread(target=other_run)
            other.start()
            _until(lambda: _lake_waiters(url) == 1, "the other run waits for the lake")
            assert events == ["inner"]
        other.join(timeout=60)
        assert events == ["inner", "other"]
        assert _lake_waiters(url) == 0


def _job(job: str, run: dict, env: dict, job_args=()) -> subprocess.Popen:
    from inference_ledger import orchestration

    target = orchestration.SparkTarget(master="local[2]")
    cmd = orchestration.spark_submit_command(job, run, target, job_args=job_args)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_the_ingest_dags_job_and_the_nightly_dags_job_never_write_the_lake_at_once(
    spark, pg_url, tmp_path
):
    """The two DAGs' Spark jobs, run by the command line their SparkSubmitOperator tasks run:
    while one run holds the lake (here the test, as the nightly DAG's aggregate job would), the
    ingest DAG's job waits, saying so, and writes nothing; then it ingests. The nightly DAG's
    aggregate job waits the same way for an ingest in progress."""
    landing = generate_small(tmp_path / "landing")
    with isolated_ledger(pg_url, tmp_path / "home", "dags") as url:
        home = tmp_path / "home"
        env = subprocess_env(LEDGER_HOME=str(home), LEDGER_DATABASE_URL=url)
        lake_dir = home / "lake"
        run = {"run_id": "run-lock-test", "landing": str(landing), "start": "2024-01-01",
               "end": "2024-04-01", "as_of": str(AS_OF)}  # fmt: skip
        RunStore(url, run["run_id"]).open(
            "airflow:ledger_ingest_billing/test", str(landing), "local[2]",
            date(2024, 1, 1), date(2024, 4, 1), as_of=AS_OF,
        )  # fmt: skip
        with lake_lock(url):
            ingest = _job("ingest", run, env, ["--sources", "billing"])
            _until(lambda: _lake_waiters(url) == 1 or ingest.poll() is not None,
                   "the ingest job waits for the lake")  # fmt: skip
            assert ingest.poll() is None, ingest.communicate()[1][-3000:]
            assert not (lake_dir / "billing_lines").exists()  # nothing written while waiting
        out, err = ingest.communicate(timeout=900)
        assert ingest.returncode == 0, err[-3000:]
        assert "another run is in progress on this ledger; waiting for it to finish" in out + err
        assert (lake_dir / "billing_lines").is_dir()

        with lake_lock(url):
            aggregate = _job("aggregate", run, env)
            _until(lambda: _lake_waiters(url) == 1 or aggregate.poll() is not None,
                   "the aggregate job waits for the lake")  # fmt: skip
            assert aggregate.poll() is None, aggregate.communicate()[1][-3000:]
        out, err = aggregate.communicate(timeout=900)
        assert aggregate.returncode == 0, err[-3000:]
        # Neither job opened the run again: one row, still running (the DAG's finish ends it).
        assert query(url, "SELECT count(*), min(status), min(command) FROM audit.runs") == [
            (1, "running", "airflow:ledger_ingest_billing/test")
        ]


def test_publish_refuses_a_run_whose_aggregate_recorded_nothing(pg_url, tmp_path):
    """The publish step reads what the aggregate decided from the run store; a run without it
    (aggregate not run, or killed before recording) is refused by name, nothing staged."""
    from inference_ledger.publish import publish
    from inference_ledger.run.context import RunContext

    with isolated_ledger(pg_url, tmp_path / "home", "no_aggregate") as url:
        store = RunStore(url, "run-no-aggregate")
        store.open("ledger run", "/landing", "local[2]", date(2024, 1, 1), date(2024, 4, 1), AS_OF)
        ctx = RunContext(run_id="run-no-aggregate", landing=tmp_path)
        with pytest.raises(RunStateError, match="run-no-aggregate has no aggregate recorded"):
            publish(ctx, url)
        assert query(url, "SELECT count(*) FROM staging.control_totals") == [(0,)]
