"""Spark through `spark-submit`: where the jobs run (the `spark_default` connection), their
Spark properties, arguments and environment."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference_ledger.orchestration.wiring import SPARK_CONN_ID, RunInfo
from inference_ledger.settings import DEFAULT_SPARK_MASTER, load_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SparkTarget:
    """Where and how `spark-submit` runs a job: from the `spark_default` connection."""

    master: str = DEFAULT_SPARK_MASTER
    deploy_mode: str | None = None
    binary: str | None = None  # None: the spark-submit next to this interpreter, else on PATH
    conf: Mapping[str, str] = field(default_factory=dict)


def spark_target(connection: Any | None = None) -> SparkTarget:
    """A `SparkTarget` from an Airflow connection (or None: `$LEDGER_SPARK_MASTER`, else
    local[*]).

    The connection is read the way the apache-spark provider's SparkSubmitHook reads it:
    a URI connection `spark://spark-master:7077` has conn_type `spark`, host `spark-master`
    and port 7077, giving master `spark://spark-master:7077`; a connection whose host holds a
    full master (`local[*]`, `yarn`, `k8s://https://…`) is used as is (plus `:port` if any).
    Extras: `deploy-mode`, `spark-binary` (a name on PATH or an absolute path) and `conf`
    (a JSON object of Spark properties, e.g. the s3a settings of the lake).
    """
    if connection is None:
        return SparkTarget(master=load_settings().spark_master)
    host = (getattr(connection, "host", None) or "").strip()
    conn_type = (getattr(connection, "conn_type", None) or "spark").strip()
    port = getattr(connection, "port", None)
    if conn_type == "spark" and host and ("://" in host or not port):
        master = host
    elif host:
        master = f"{conn_type}://{host}"
    else:
        master = load_settings().spark_master
    if port:
        master = f"{master}:{port}"
    extra = _extra(connection)
    conf = extra.get("conf") or {}
    if isinstance(conf, str):
        conf = json.loads(conf)
    return SparkTarget(
        master=master,
        deploy_mode=extra.get("deploy-mode") or None,
        binary=extra.get("spark-binary") or None,
        conf={str(k): str(v) for k, v in conf.items()},
    )


def _extra(connection: Any) -> dict:
    extra = getattr(connection, "extra_dejson", None)
    if extra is not None:
        return dict(extra)
    raw = getattr(connection, "extra", None)
    return json.loads(raw) if raw else {}


def spark_connection(conn_id: str = SPARK_CONN_ID) -> SparkTarget:
    """The `SparkTarget` of the Airflow connection `conn_id`, read at run time in the worker.
    When it is not defined, the worker's `$LEDGER_SPARK_MASTER`, else local[*]; and it is then
    defined so for this task's process, since SparkSubmitHook reads the connection too (its
    own default would be `yarn`)."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return spark_target(Connection.get(conn_id))
    except AirflowNotFoundException:
        log.info("no Airflow connection %r: Spark master from the environment", conn_id)
    target = spark_target(None)
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
        {"conn_type": "spark", "host": target.master}
    )
    return target


def jobs_dir() -> Path:
    """The folder of the spark-submit entry points: $LEDGER_JOBS_DIR, else the repository's
    jobs/ (this package installed in development mode from the repository)."""
    folder = load_settings().jobs_dir or Path(__file__).resolve().parents[3] / "jobs"
    if not (folder / "_args.py").is_file():
        raise FileNotFoundError(
            f"no Spark jobs in {folder}: set LEDGER_JOBS_DIR to the jobs/ folder"
        )
    return folder


def _spark_submit_binary(target: SparkTarget) -> str:
    if target.binary:
        return target.binary
    beside = Path(sys.executable).parent / "spark-submit"
    return str(beside) if beside.exists() else "spark-submit"


def spark_conf(target: SparkTarget) -> dict[str, str]:
    """The Spark properties every job runs with: the JVM options of `inference_ledger.spark`
    (log4j config, JIT of huge generated methods, LEDGER_SPARK_JAVA_OPTIONS) and the driver
    memory, then the connection's `conf` extra (which may override them)."""
    from inference_ledger.spark import java_options

    settings = load_settings()
    driver, executor = java_options(settings)
    return {
        "spark.driver.extraJavaOptions": driver,
        "spark.executor.extraJavaOptions": executor,
        "spark.driver.memory": settings.spark_driver_memory,
        **target.conf,
    }


def job_arguments(run: RunInfo, job_args: Iterable[str] = ()) -> list[str]:
    """A job's arguments for one run (jobs/_args.py). No secret: the jobs read the database
    URL and the lake location from their environment."""
    args = ["--run-id", run["run_id"], "--landing", run["landing"]]
    for flag, key in (("--start", "start"), ("--end", "end"), ("--as-of", "as_of")):
        if run.get(key):
            args += [flag, run[key]]
    return [*args, *job_args]


def spark_submit_command(
    job: str,
    run: RunInfo,
    target: SparkTarget,
    jobs: Path | None = None,
    job_args: Iterable[str] = (),
) -> list[str]:
    """The `spark-submit` command line of one job of a run, as SparkSubmitOperator builds it
    in the DAGs; for running the jobs outside Airflow (the cluster test, a shell)."""
    cmd = [_spark_submit_binary(target), "--master", target.master]
    if target.deploy_mode:
        cmd += ["--deploy-mode", target.deploy_mode]
    cmd += ["--name", f"inference-ledger:{job}:{run['run_id']}"]
    for key, value in spark_conf(target).items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, str((jobs or jobs_dir()) / f"{job}.py"), *job_arguments(run, job_args)]


def job_environment(target: SparkTarget) -> dict[str, str]:
    """What a job's process gets on top of the worker's environment: the master it records,
    the interpreter of its Python workers (this one unless configured), and `spark-submit` on
    PATH (SparkSubmitHook runs it by name) when it is only next to this interpreter."""
    env = {
        "LEDGER_SPARK_MASTER": target.master,
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
        "PYSPARK_DRIVER_PYTHON": os.environ.get("PYSPARK_DRIVER_PYTHON", sys.executable),
    }
    beside = Path(sys.executable).parent
    if shutil.which("spark-submit") is None and (beside / "spark-submit").exists():
        env["PATH"] = f"{beside}{os.pathsep}{os.environ.get('PATH', '')}"
    return env


def spark_submit_env(target: SparkTarget) -> dict[str, str]:
    """The job's whole environment: the worker's own (LEDGER_*, credentials) and
    `job_environment`."""
    return {**os.environ, **job_environment(target)}
