"""`airflow backfill create` executed for real: a scheduler (LocalExecutor) and the api-server's
Execution API run the backfill's `ledger_nightly` runs, and the marts they publish equal those
of `ledger run` over the same range.

Airflow runs as it would in a deployment, in subprocesses with their own AIRFLOW_HOME: the
metadata database is a database on the test run's embedded Postgres (Unix socket; the
LocalExecutor needs a database that takes concurrent writers, not SQLite), a copy of the one
the test run migrated (tests/airflow_support.py), the DAGs are
serialized once with `airflow dags reserialize` (no DAG processor needed), tasks run through
the Task SDK, which talks to `airflow api-server --apps execution` on a free port, with a
JWT secret made for this test.

The lake the backfill aggregates is the one `ledger run` ingested (copied into the
backfill's own LEDGER_HOME): ledger_nightly publishes from the lake; ingest is the ingest
DAGs' job. Each backfill run publishes into its own database.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.airflow_support import BIN, REPO, airflow_cli, airflow_env, for_airflow
from tests.cli_baseline import PERIOD, database_on, mart_digests
from tests.test_spark_cluster import _free_port

# Two nights of 2024-Q1: the runs of 2024-03-30 and 2024-03-31 (the 03:00 cron; --to-date is
# the end of the window, so the 2024-04-01 run is not in it). The last one's data interval
# ends 2024-04-01: its as-of date is the baseline's.
FROM_DATE, TO_DATE = "2024-03-30", "2024-04-01"
EXPECTED_LOGICAL_DATES = ["2024-03-30 03:00:00+00:00", "2024-03-31 03:00:00+00:00"]
# A bound, not a speed check: on the shared 2-core machine at load ~24 both runs took 12.3 min.
WAIT_SECONDS = 1200


@contextlib.contextmanager
def _services(env: dict[str, str], logs: Path, port: int):
    """The api-server (Execution API only) and the scheduler, stopped with their children
    (the LocalExecutor's workers, the tasks' spark-submit) whatever happens."""
    procs: list[subprocess.Popen] = []
    commands = {
        "api-server": [
            "api-server", "--apps", "execution", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1",
        ],
        "scheduler": ["scheduler"],
    }  # fmt: skip
    try:
        for name, args in commands.items():
            out = (logs / f"{name}.log").open("w")
            procs.append(
                subprocess.Popen(
                    [str(BIN / "airflow"), *args],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=REPO,
                    start_new_session=True,
                )
            )
            out.close()
        yield procs
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _backfill_runs(airflow_url: str) -> list[tuple[str, str]]:
    from inference_ledger.db import connect

    conn = connect(airflow_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT to_char(logical_date AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
                " || '+00:00', state FROM dag_run"
                " WHERE dag_id = 'ledger_nightly' AND run_type = 'backfill' ORDER BY logical_date"
            )
            rows = cur.fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def _logs_tail(folder: Path, lines: int = 60) -> str:
    parts = []
    for path in sorted(folder.rglob("*.log")):
        text = path.read_text(errors="replace").splitlines()
        parts.append(f"--- {path.relative_to(folder)}\n" + "\n".join(text[-lines:]))
    return "\n".join(parts)[-20000:]


@pytest.mark.slow
def test_backfill_create_runs_ledger_nightly_and_publishes_like_ledger_run(
    pg_url, cli_baseline, airflow_metadata, tmp_path
):
    landing, cli_url = cli_baseline
    baseline_lake = Path(landing).parent / "home" / "lake"
    home = tmp_path / "home"
    shutil.copytree(baseline_lake, home / "lake", ignore=shutil.ignore_patterns("_runs"))
    ledger_url = database_on(pg_url, "ledger_backfill")
    # A fresh copy of the test run's migrated Airflow metadata database (`airflow db migrate`).
    airflow_url = airflow_metadata("airflow_backfill")

    airflow_home = tmp_path / "airflow"
    airflow_home.mkdir()
    port = _free_port()
    env = airflow_env(
        airflow_home,
        for_airflow(airflow_url),
        drop=("LEDGER_", "AIRFLOW", "PYSPARK_GATEWAY"),
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="2",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
        # Only the backfill's runs: no scheduled run of today's interval once unpaused.
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(_free_port()),
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
        AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="0.5",
        LEDGER_HOME=str(home),
        LEDGER_DATABASE_URL=ledger_url,
        LEDGER_LANDING=str(landing),
        LEDGER_SHUFFLE_PARTITIONS="2",
        LEDGER_SPARK_DRIVER_MEMORY="1g",
        LEDGER_SPARK_JAVA_OPTIONS=os.environ.get("LEDGER_SPARK_JAVA_OPTIONS", ""),
        LEDGER_SPARK_PAGE_SIZE=os.environ.get("LEDGER_SPARK_PAGE_SIZE", ""),
        AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type": "spark", "host": "local[2]"}',
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    airflow_cli(env, "dags", "reserialize")
    # The scheduler starts no run of a paused DAG, a backfill's included.
    airflow_cli(env, "dags", "unpause", "ledger_nightly")

    with _services(env, airflow_home, port) as procs:
        airflow_cli(
            env, "backfill", "create", "--dag-id", "ledger_nightly",
            "--from-date", FROM_DATE, "--to-date", TO_DATE, "--max-active-runs", "1",
        )  # fmt: skip
        deadline = time.monotonic() + WAIT_SECONDS
        runs: list[tuple[str, str]] = []
        while time.monotonic() < deadline:
            runs = _backfill_runs(airflow_url)
            if len(runs) == 2 and all(state in ("success", "failed") for _, state in runs):
                break
            dead = [p.args[1] for p in procs if p.poll() is not None]
            assert not dead, f"{dead} exited:\n{_logs_tail(airflow_home)}"
            time.sleep(2)
        assert runs == [(d, "success") for d in EXPECTED_LOGICAL_DATES], (
            f"{runs}\n{_logs_tail(airflow_home)}"
        )

    # Each run recorded its ledger run; the last one (as of 2024-04-01) left the marts equal,
    # row for row, to `ledger run --start 2024-01-01 --end 2024-04-01 --as-of 2024-04-01`.
    from inference_ledger.db import connect

    conn = connect(ledger_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT command, status, period_start, period_end FROM audit.runs ORDER BY started_at"
            )
            ledger_runs = cur.fetchall()
        conn.commit()
    finally:
        conn.close()
    assert [(r[1], r[2], r[3]) for r in ledger_runs] == [("succeeded", *PERIOD)] * 2
    assert all(r[0].startswith("airflow:ledger_nightly/backfill__") for r in ledger_runs)
    assert mart_digests(ledger_url, *PERIOD) == mart_digests(cli_url, *PERIOD)
