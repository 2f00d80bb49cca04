"""Shared fixtures: one Spark session per test run (2 cores), one embedded Postgres."""

from __future__ import annotations

import os

import pytest

# Tests never touch the user's ./var: every test run gets its own LEDGER_HOME.
pytest_plugins = ["tests.fixtures_pg"]


@pytest.fixture(scope="session")
def ledger_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("ledger_home")
    os.environ["LEDGER_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def spark(ledger_home):
    os.environ.setdefault("LEDGER_SPARK_MASTER", "local[2]")
    os.environ.setdefault("LEDGER_SHUFFLE_PARTITIONS", "2")
    from inference_ledger.spark import get_spark, stop_spark

    session = get_spark("inference-ledger-tests")
    yield session
    stop_spark()
