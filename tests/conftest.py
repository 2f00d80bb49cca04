"""Shared fixtures: one Spark session per test session (2 cores), one embedded Postgres, and the
reliability tests' baseline publish (one per test session, copied by the tests that use it).
`make test` runs two test sessions side by side, one per xdist worker (tests/xdist_support.py)."""

from __future__ import annotations

import os
import shutil

import pytest

from tests import xdist_support
from tests.tmpdirs import private_tmp_dir

# Tests never touch the user's ./var: every test run gets its own LEDGER_HOME.
pytest_plugins = ["tests.fixtures_pg", "tests.airflow_support"]


# Modules that are slow as a whole (Airflow: `airflow dags test` runs, the scheduler, the DAG
# bag) but whose files are not marked here: the fast tier (`make test-fast`, -m "not slow")
# leaves them to the full run.
SLOW_MODULES = {"test_dags.py"}

# Every Spark JVM the tests start in a subprocess (pipeline runs, spark-submit jobs, a cluster's
# daemons and executors) compiles with C1 only. Those runs are small and short, and
# on 2 cores C2's compile threads take a core from them: one small `ledger run` spent ~56 s of
# CPU in the JIT (C1 only: ~14 s) for the same ~54 s of wall time, and the standalone-cluster
# test (five JVMs) took 150 s with C2, 109 s without. Set before any fixture builds a
# subprocess' environment; a test that builds one from scratch passes the variable on.
# C1 alone gets the non-tiered code cache (48 MB), which a subprocess run filled ("Out of space
# in CodeCache for method handle intrinsic", the concurrency test): give it the tiered default.
TEST_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"
os.environ.setdefault("LEDGER_SPARK_JAVA_OPTIONS", TEST_JVM_OPTIONS)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    xdist_support.check_groups(items)
    if hasattr(config, "workerinput"):
        # An xdist worker: the controller takes the groups in collection order (make test
        # passes --no-loadscope-reorder).
        xdist_support.longest_first(items)


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadgroup` (make test): modules, and the modules sharing a costly session
    fixture, each on one worker (tests/xdist_support.py says why not xdist's own)."""
    if config.getvalue("dist") == "loadgroup":
        return xdist_support.ModuleGroupScheduling(config, log)
    return None


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

    # This JVM is not short-lived: it runs every in-process test's plans, and C2 pays off
    # there (the fast tier took 4:29 with C1 only, 3:45 without).
    subprocesses_only = os.environ.pop("LEDGER_SPARK_JAVA_OPTIONS", None)
    try:
        session = get_spark("inference-ledger-tests")
    finally:
        if subprocesses_only is not None:
            os.environ["LEDGER_SPARK_JAVA_OPTIONS"] = subprocesses_only
    yield session
    stop_spark()


@pytest.fixture(scope="session")
def reliability_baseline(spark, pg_url, tmp_path_factory):
    """One generated 2024-Q1 landing published once (tests.reliability_support.Baseline): the
    bad-input and crash tests start from copies of it instead of publishing it each."""
    from tests.reliability_support import drop_database, make_baseline

    baseline = make_baseline(pg_url, tmp_path_factory.mktemp("reliability_baseline"))
    yield baseline
    drop_database(pg_url, baseline.database)


@pytest.fixture(scope="session")
def cli_baseline(spark, pg_url, tmp_path_factory):
    """(landing, database URL) of one `ledger run` over a generated 2024-Q1, as of its end
    (tests/cli_baseline.py): what the Spark-cluster and Airflow tests compare with."""
    from tests.cli_baseline import make_cli_baseline

    return make_cli_baseline(pg_url, tmp_path_factory.mktemp("ledger_baseline"))
