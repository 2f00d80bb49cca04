"""Shared fixtures: one Spark session per test session (2 cores), one embedded Postgres, and the
reliability tests' baseline publish (one per test session, copied by the tests that use it).
`make test` runs two test sessions side by side, one per xdist worker (tests/xdist_support.py)."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests import xdist_support
from tests.tmpdirs import private_tmp_dir

# Tests never touch the user's ./var: every test run gets its own LEDGER_HOME.
pytest_plugins = ["tests.fixtures_pg", "tests.airflow_support"]
SPARK_APP = "inference-ledger-tests"


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
# G1's 4 MB regions (1 MB at these heaps): a task's 1 MB result buffer or memory page is then
# an ordinary object, not a humongous one that starts a concurrent marking cycle.
HEAP_OPTIONS = "-XX:G1HeapRegionSize=4m"
TEST_JVM_OPTIONS = f"-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m {HEAP_OPTIONS}"
os.environ.setdefault("LEDGER_SPARK_JAVA_OPTIONS", TEST_JVM_OPTIONS)
# Spark's page at a 2g driver on 2 cores is 32 MB, and every hash aggregate task and broadcast
# hash relation of a few rows takes one, zeroed: in the test session's JVM, which runs
# thousands of such plans, ~1 GB of a 2 GB heap stayed live in 32 MB pages (held by the
# broadcasts until Spark's cleaner drops them) and G1 ran a marking cycle every few seconds.
# 1 MB pages: the fast tier's JVM 237-244 -> 164-181 s of CPU, 3:51-3:56 -> 2:59-3:12
# (docs/test-times.md). Every Spark JVM the tests start reads it (settings.py).
os.environ.setdefault("LEDGER_SPARK_PAGE_SIZE", "1m")
# The test run's own Spark session, and every pipeline run a test makes in this process.
os.environ.setdefault("LEDGER_SPARK_MASTER", "local[2]")
os.environ.setdefault("LEDGER_SHUFFLE_PARTITIONS", "2")
TESTS = Path(__file__).resolve().parent


def pytest_sessionstart(session):
    """A session that runs the whole suite (or its fast tier) starts its Spark JVM now, on a
    thread, while pytest imports and collects the test modules (~5 s each, one core each); the
    `spark` fixture then takes that session or waits for it. Not for a session that runs named
    modules (it may need no Spark) nor for xdist's controller (its workers run the tests)."""
    config = session.config
    controller = config.getoption("numprocesses", None) and not hasattr(config, "workerinput")
    named = any(Path(a.split("::")[0]).resolve() not in (TESTS, TESTS.parent) for a in config.args)
    if not (config.option.collectonly or controller or named):
        from inference_ledger.spark import start_in_background

        basetemp = config._tmp_path_factory.getbasetemp()
        start_in_background(SPARK_APP, _session_spark_settings(basetemp))


def _session_spark_settings(basetemp: Path):
    """This process' JVM is not short-lived: it runs every in-process test's plans, and C2 pays
    off there (the fast tier took 4:29 with C1 only, 3:45 without): the subprocesses' JVM
    options are not for it. Its log goes to a file (tests/log4j2-session.properties)."""
    from inference_ledger.settings import load_settings

    log = f"-Dlog4j.configurationFile={TESTS / 'log4j2-session.properties'}"
    options = f"{log} -Dledger.tests.spark_log={basetemp / 'spark-session.log'} {HEAP_OPTIONS}"
    return dataclasses.replace(load_settings(), spark_java_options=options)


def pytest_sessionfinish(session):
    """Importing Airflow in this process (the DAG tests) points the root logger at the stdout
    pytest had captured at that moment. The capture's file is closed at exit, where pgserver's
    and py4j's cleanup log a line each: "--- Logging error ---" tracebacks at the end of the
    CI log. That handler goes with the capture; pytest's own handlers stay."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        stream = getattr(handler, "stream", None)
        ours = type(handler).__module__.startswith("_pytest")
        if stream is not None and not ours and stream not in (sys.__stdout__, sys.__stderr__):
            root.removeHandler(handler)


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
def spark(ledger_home, tmp_path_factory):
    """The test session's Spark. Its plans run interpreted, as a small run's steps do under
    LEDGER_SPARK_CODEGEN=auto (spark.codegen_for): the tests' inputs are small. A step a test
    runs sets its own; the `cli_baseline` run compiles, and the runs compared with it do not."""
    from inference_ledger.spark import get_spark, set_codegen, stop_spark

    session = get_spark(SPARK_APP, _session_spark_settings(tmp_path_factory.getbasetemp()))
    set_codegen(session, False)
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
