"""Airflow in subprocesses, for test_dags.py and test_airflow_backfill.py: the environment of
an Airflow subprocess (its own AIRFLOW_HOME, dags/ only) and its metadata database.

The metadata database is a database on the test run's embedded Postgres (Unix socket). It is
migrated once per test run (`airflow db migrate` into a template, the `airflow_metadata`
session fixture); each user gets a fresh copy of it (CREATE DATABASE ... TEMPLATE), so Airflow
state never leaks from one test into another.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from psycopg2 import sql
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAGS = REPO / "dags"
TEMPLATE = "airflow_metadata_template"


def for_airflow(url: str) -> str:
    """A database URL of the embedded server as Airflow's SQL_ALCHEMY_CONN takes it."""
    return make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def airflow_env(
    home: Path, metadata_url: str, *, drop: tuple[str, ...] = ("AIRFLOW",), **extra: str
) -> dict[str, str]:
    """The environment of an Airflow subprocess: this process' minus the variables starting
    with `drop`, its own AIRFLOW_HOME, dags/ only, no examples, `metadata_url` (SQLAlchemy
    form, see `for_airflow`) as the metadata database; then `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata_url,
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        **extra,
    )
    return env


def airflow_cli(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    """`airflow ARGS` in `env`; asserts it succeeded and returns its output."""
    done = subprocess.run(
        [str(BIN / "airflow"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"airflow {' '.join(args)}:\n{output[-4000:]}"
    return output


def _admin(pg_url: str):
    from inference_ledger.db import connect

    conn = connect(pg_url)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def airflow_metadata(pg_url, tmp_path_factory) -> Callable[[str], str]:
    """`airflow db migrate` once per test run, into a template database; returns a function
    that makes a fresh copy of it named `name` (dropping any older one) and returns its URL
    (the ledger's form, for `inference_ledger.db.connect`; `for_airflow` converts it)."""
    from tests.cli_baseline import database_on

    template_url = database_on(pg_url, TEMPLATE)
    airflow_cli(
        airflow_env(tmp_path_factory.mktemp("airflow_migrate"), for_airflow(template_url)),
        "db",
        "migrate",
    )

    def copy(name: str) -> str:
        conn = _admin(pg_url)
        try:
            with conn.cursor() as cur:
                # A template must have no other session while it is copied.
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (TEMPLATE,),
                )
                cur.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
                cur.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(TEMPLATE)
                    )
                )
        finally:
            conn.close()
        return make_url(pg_url).set(database=name).render_as_string(hide_password=False)

    return copy
