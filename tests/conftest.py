"""Shared fixtures: one Spark session per test run (2 cores), one embedded Postgres, and the
reliability tests' baseline publish (one per test run, copied by the tests that use it)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Tests never touch the user's ./var: every test run gets its own LEDGER_HOME.
pytest_plugins = ["tests.fixtures_pg"]


def private_tmp_dir(prefix: str) -> Path:
    """A directory of its own under the system temp, outside pytest's basetemp: the embedded
    Postgres in it runs as another OS user (under root) and needs its parents traversable.
    pytest re-secures /tmp/pytest-of-<user> (0700) and deletes old numbered basetemps when a
    session starts, so a second pytest session at the same time would break a server there."""
    return Path(tempfile.mkdtemp(prefix=prefix)).resolve()


@pytest.fixture(scope="session")
def ledger_home():
    home = private_tmp_dir("ledger-test-")
    saved = os.environ.get("LEDGER_HOME")
    os.environ["LEDGER_HOME"] = str(home)
    yield home
    # pg_url and spark depend on this fixture, so their servers are stopped by now.
    if saved is None:
        os.environ.pop("LEDGER_HOME", None)
    else:
        os.environ["LEDGER_HOME"] = saved
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def spark(ledger_home):
    os.environ.setdefault("LEDGER_SPARK_MASTER", "local[2]")
    os.environ.setdefault("LEDGER_SHUFFLE_PARTITIONS", "2")
    from inference_ledger.spark import get_spark, stop_spark

    session = get_spark("inference-ledger-tests")
    yield session
    stop_spark()
