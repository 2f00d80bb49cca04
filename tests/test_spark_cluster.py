"""The Spark jobs run unchanged on a standalone cluster: a master and two workers started on
127.0.0.1 from the installed pyspark, `spark-submit --master spark://…` of jobs/ingest.py,
jobs/aggregate.py and jobs/publish.py (which starts no Spark session), and the marts equal
those of a `local[*]` run (`ledger run`) on the same landing folder.

The two runs have their own LEDGER_HOME (lake, staging) and their own database on the test
run's embedded Postgres server; what is compared is the content of every mart, row for row.
The `ledger run` is the test run's `cli_baseline` (tests/cli_baseline.py), which the Airflow
tests compare with too.
The cluster run passes everything through arguments and environment: the lake path, the
database URL (env only) and the landing folder; nothing comes from the test process' state.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from inference_ledger.settings import load_settings
from inference_ledger.spark import java_options
from tests.cli_baseline import PERIOD, database_on, mart_digests

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The Spark distribution inside the installed pyspark (bin/, jars/), found without importing it.
SPARK_HOME = str(Path(importlib.util.find_spec("pyspark").origin).parent)


def _env(home: Path, url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LEDGER_", "AIRFLOW", "PYSPARK_GATEWAY"))
    }
    env.update(
        LEDGER_HOME=str(home),
        LEDGER_DATABASE_URL=url,
        LEDGER_SHUFFLE_PARTITIONS="2",
        LEDGER_SPARK_DRIVER_MEMORY="1g",
        LEDGER_SPARK_JAVA_OPTIONS=os.environ.get("LEDGER_SPARK_JAVA_OPTIONS", ""),
        LEDGER_SPARK_PAGE_SIZE=os.environ.get("LEDGER_SPARK_PAGE_SIZE", ""),
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        **extra,
    )
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _master_state(webui_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{webui_port}/json/", timeout=5) as r:
        return json.loads(r.read())


class StandaloneCluster:
    """A Spark standalone master and workers on 127.0.0.1, from the installed pyspark."""

    def __init__(self, workdir: Path, workers: int = 2):
        self.workdir = workdir
        self.workers = workers
        self.port = _free_port()
        self.webui_port = _free_port()
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _start(self, name: str, args: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_GATEWAY")}
        env.update(
            SPARK_HOME=SPARK_HOME,
            SPARK_LOCAL_IP="127.0.0.1",
            SPARK_LOG_DIR=str(self.workdir),
            PYSPARK_PYTHON=sys.executable,
            # The master's and workers' own JVMs, with the executors' options (the class-data
            # archive, LEDGER_SPARK_JAVA_OPTIONS as in tests/conftest.py).
            SPARK_DAEMON_JAVA_OPTS=java_options(load_settings())[1],
        )
        self.procs.append(
            subprocess.Popen(
                [str(BIN / "spark-class"), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        )
        log.close()

    def start(self, timeout: float = 90) -> None:
        self._start(
            "master",
            [
                "org.apache.spark.deploy.master.Master",
                "--host", "127.0.0.1",
                "--port", str(self.port),
                "--webui-port", str(self.webui_port),
            ],
        )  # fmt: skip
        for i in range(self.workers):
            work = self.workdir / f"worker{i}"
            work.mkdir()
            self._start(
                f"worker{i}",
                [
                    "org.apache.spark.deploy.worker.Worker", self.url,
                    "--host", "127.0.0.1",
                    "--cores", "1",
                    "--memory", "1g",
                    "--webui-port", str(_free_port()),
                    "--work-dir", str(work),
                ],
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a Spark daemon exited: {self.logs()}")
            try:
                if _master_state(self.webui_port).get("aliveworkers") == self.workers:
                    return
            except OSError:
                pass
            time.sleep(1)
        raise TimeoutError(f"{self.workers} workers did not register: {self.logs()}")

    def state(self) -> dict:
        return _master_state(self.webui_port)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(self.workdir.glob("*.log"))
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers first, then the master
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


# The jobs that run Spark work, each an application of the cluster.
SPARK_JOBS = ("ingest", "aggregate")


@pytest.mark.slow
def test_jobs_on_a_standalone_cluster_publish_the_same_marts_as_local(
    pg_url, cli_baseline, tmp_path_factory
):
    from inference_ledger import orchestration

    # The local[*] run: `ledger run` at local[2] (tests/cli_baseline.py, once per test run).
    landing, local_url = cli_baseline

    # The cluster run: three spark-submits at spark://127.0.0.1:<port>, executors on 2 workers.
    cluster_home = tmp_path_factory.mktemp("cluster_home")
    cluster_url = database_on(pg_url, "ledger_cluster_run")
    cluster = StandaloneCluster(tmp_path_factory.mktemp("spark_cluster"))
    target = orchestration.SparkTarget(
        master=cluster.url,
        conf={"spark.executor.memory": "512m", "spark.cores.max": "2"},
    )
    run = {
        "run_id": "run-cluster-test",
        "landing": str(landing),
        "start": "2024-01-01",
        "end": "2024-04-01",
        "as_of": "2024-04-01",
    }
    # No LEDGER_SPARK_MASTER: the jobs must take the master spark-submit was given.
    env = _env(cluster_home, cluster_url)
    try:
        cluster.start()
        for job in ("ingest", "aggregate", "publish"):
            cmd = orchestration.spark_submit_command(job, run, target)
            assert cmd[cmd.index("--master") + 1] == cluster.url
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, (done.stdout + done.stderr)[-4000:] + cluster.logs()
        state = cluster.state()
    finally:
        cluster.stop()

    # The Spark jobs ran as applications of the cluster, with executors on both workers; the
    # publish job needs no Spark (the run's state is in the database, its Parquet read by
    # Arrow), so it registered no application.
    apps = {a["name"]: a for a in state["completedapps"]}
    assert sorted(apps) == sorted(f"inference-ledger:{j}:run-cluster-test" for j in SPARK_JOBS)
    assert all(a["state"] == "FINISHED" for a in apps.values()), apps
    executor_dirs = list(Path(cluster.workdir).glob("worker*/app-*/*"))
    assert {p.parts[-3] for p in executor_dirs} == {"worker0", "worker1"}, executor_dirs

    from inference_ledger.db import connect

    conn = connect(cluster_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT status, spark_master, period_start, period_end FROM audit.runs"
                " WHERE run_id = 'run-cluster-test'"
            )
            assert cur.fetchall() == [
                ("succeeded", cluster.url, date(2024, 1, 1), date(2024, 4, 1))
            ]
        conn.commit()
    finally:
        conn.close()

    local, distributed = mart_digests(local_url, *PERIOD), mart_digests(cluster_url, *PERIOD)
    assert all(count > 0 for count, _ in local.values()), local
    assert distributed == local
