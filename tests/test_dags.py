"""The Airflow DAGs in dags/: they load, follow the house rules, parse cheaply, and each runs
end to end under `airflow dags test` (the CLI) against the embedded Postgres; `dags test` and
`dag.test()` of `ledger_nightly` succeed despite its DeadlineAlert (apache/airflow#73428,
inference_ledger.airflow_compat).

Airflow reads its configuration when it is first imported, so everything that imports Airflow
runs in a subprocess with its own AIRFLOW_HOME and, where one is needed, a metadata database of
its own on the test run's embedded Postgres (a copy of one migrated once per test run,
tests/airflow_support.py); the tests assert on the subprocess' result and query the marts
themselves.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from inference_ledger import airflow_compat, orchestration
from tests import airflow_support

REPO = airflow_support.REPO
DAGS = airflow_support.DAGS
RESULT = "RESULT "

# The rules every DAG in dags/ follows.
LOAD_DAGS = """
import json, sys
from airflow.dag_processing.dagbag import DagBag

def condition(cond):
    # An asset condition as text: any(all(uri, uri), uri)
    if cond is None:
        return None
    if hasattr(cond, "uri"):
        return cond.uri
    kind = type(cond).__name__.replace("Asset", "").lower()
    return kind + "(" + ", ".join(condition(o) for o in cond.objects) + ")"

bag = DagBag(dag_folder=sys.argv[1])
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "fileloc": dag.fileloc,
        "tags": sorted(dag.tags),
        "doc_md": dag.doc_md or "",
        "max_active_runs": dag.max_active_runs,
        "catchup": dag.catchup,
        "timetable": type(dag.timetable).__name__,
        "params": sorted(dag.params),
        "deadlines": [
            {
                "reference": type(d.reference).__name__,
                "seconds": d.interval.total_seconds(),
                "callback": d.callback.path,
            }
            for d in (dag.deadline or [])
        ],
        "schedule_assets": condition(getattr(dag.timetable, "asset_condition", None)),
        "tasks": {
            t.task_id: {
                "owner": t.owner,
                "retries": t.retries,
                "backoff": t.retry_exponential_backoff,
                "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
                "upstream": sorted(t.upstream_task_ids),
                "pool": t.pool,
                "outlets": sorted(getattr(o, "uri", str(o)) for o in t.outlets),
                "operator": [c.__name__ for c in type(t).__mro__],
                "conn_id": getattr(t, "_conn_id", None),
                "job": getattr(t, "job", None),
                "job_args": getattr(t, "job_args", None),
            }
            for t in dag.tasks
        },
    }
errors = {str(k): str(v) for k, v in bag.import_errors.items()}
print("RESULT " + json.dumps({"import_errors": errors, "dags": dags}))
"""

# Imports one DAG file the way the DAG processor would, with Spark and Great Expectations made
# unimportable: a DAG file (or what it imports) that reaches for them fails here.
PARSE_COST = """
import importlib.util, json, sys, time

for name in ("pyspark", "great_expectations"):
    sys.modules[name] = None  # `import pyspark` now raises ImportError
import airflow.sdk as sdk
for name in (
    "dag", "task", "Param", "TriggerRule", "CronDataIntervalTimetable", "Asset",
    "AssetOrTimeSchedule", "AsyncCallback", "DeadlineAlert", "DeadlineReference",
    "get_current_context",
):
    getattr(sdk, name)  # warm Airflow's lazy imports: measure the DAG file, not Airflow
# Airflow discovers the installed providers' asset URI handlers once per process, on the first
# Asset made; the Amazon provider's handler imports boto3. That is Airflow's one-off cost in a
# DAG processor, whatever the DAG file: paid here, before the DAG file is measured.
from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime
ProvidersManagerTaskRuntime().asset_uri_handlers

path = sys.argv[1]
before = set(sys.modules)
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("dag_under_test", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
seconds = time.perf_counter() - started
new = sorted(set(sys.modules) - before - {"dag_under_test"})
print("RESULT " + json.dumps({"seconds": seconds, "modules": new}))
"""

# dag.test() of a DAG with every task marked success (nothing runs: no Spark, no ledger
# database), first as Airflow's own DAG.test() (the class' method), then as the DAG file made
# it (inference_ledger.airflow_compat's shim on affected Airflow versions). What is tested is
# the end of a successful run, where Airflow <= 3.3.2 crashes on a DeadlineAlert.
DAG_TEST = """
import json, sys
from datetime import datetime
import airflow
from airflow import settings
from airflow.dag_processing.dagbag import DagBag

dags_folder, dag_id, logical_date = sys.argv[1:4]
bag = DagBag(dag_folder=dags_folder)
assert not bag.import_errors, bag.import_errors
dag = bag.get_dag(dag_id)
when = datetime.fromisoformat(logical_date)
try:
    type(dag).test(dag, logical_date=when, mark_success_pattern=".*")
    unshimmed = None
except Exception as exc:
    unshimmed = f"{type(exc).__name__}: {exc}"
    settings.Session().rollback()
dr = dag.test(logical_date=when, mark_success_pattern=".*")
print("RESULT " + json.dumps({
    "airflow": airflow.__version__,
    "shimmed": "test" in vars(dag),
    "unshimmed_error": unshimmed,
    "run_id": dr.run_id,
    "state": str(getattr(dr.state, "value", dr.state)),
}))
"""


def _run(code: str, *args: str, env: dict[str, str], timeout: float):
    """Run `code` in a fresh interpreter; returns (exit code, its RESULT dict, its output)."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    output = done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    result = json.loads(lines[-1][len(RESULT) :]) if lines else None
    return done.returncode, result, output


def _tail(output: str, lines: int = 80) -> str:
    return "\n".join(output.splitlines()[-lines:])


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    """Environment of an Airflow subprocess: its own home, dags/ only, and a SQLite metadata
    database that is never created (loading and parsing DAGs need none)."""
    home = tmp_path_factory.mktemp("airflow_home")
    return airflow_support.airflow_env(home, f"sqlite:///{home}/airflow.db")


@pytest.fixture(scope="session")
def airflow_db(airflow_env, airflow_metadata) -> dict[str, str]:
    """`airflow_env` with a migrated metadata database (`dags test` and backfill need one): a
    copy of the test run's, migrated once (tests/airflow_support.py)."""
    url = airflow_support.for_airflow(airflow_metadata("airflow_dags"))
    return {**airflow_env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}


@pytest.fixture(scope="module")
def dagbag(airflow_env) -> dict:
    code, result, output = _run(LOAD_DAGS, str(DAGS), env=airflow_env, timeout=120)
    assert code == 0 and result is not None, _tail(output)
    return result


# ---------------------------------------------------------------- loading and house rules


def test_dag_folder_loads_without_import_errors(dagbag):
    assert dagbag["import_errors"] == {}
    assert "ledger_nightly" in dagbag["dags"]


def test_every_dag_follows_the_house_rules(dagbag):
    assert dagbag["dags"]
    for dag_id, d in dagbag["dags"].items():
        assert d["tags"], f"{dag_id}: no tags"
        assert d["doc_md"].strip(), f"{dag_id}: no doc_md"
        assert d["max_active_runs"] == 1, f"{dag_id}: max_active_runs {d['max_active_runs']}"
        assert d["catchup"] is False, f"{dag_id}: catchup"
        for task_id, t in d["tasks"].items():
            assert t["owner"] and t["owner"] != "airflow", f"{dag_id}.{task_id}: no owner"
            assert t["retries"] > 0, f"{dag_id}.{task_id}: no retries"


def test_ledger_nightly_wiring(dagbag):
    d = dagbag["dags"]["ledger_nightly"]
    assert Path(d["fileloc"]) == DAGS / "ledger_nightly.py"
    # Assets or a nightly data-interval timetable, whichever fires first.
    assert d["timetable"] == "AssetOrTimeSchedule"
    uris = orchestration.ASSET_URIS
    assert d["schedule_assets"] == (
        f"any(all({uris['billing']}, {uris['usage']}), {uris['finance']})"
    )
    assert d["params"] == ["as_of", "end", "landing", "start"]
    upstream = {task_id: t["upstream"] for task_id, t in d["tasks"].items()}
    assert upstream == {
        "prepare": [],
        "aggregate": ["prepare"],
        "publish": ["aggregate", "prepare"],
        "report": ["prepare", "publish"],
        "finish": ["report"],
    }
    # The Spark step is the apache-spark provider's operator, on the `spark_default`
    # connection (its master: local[*] by default, spark://spark-master:7077 in compose).
    t = d["tasks"]["aggregate"]
    assert t["operator"][:2] == ["LedgerSparkSubmitOperator", "SparkSubmitOperator"]
    assert (t["conn_id"], t["job"], t["job_args"]) == ("spark_default", "aggregate", [])
    # Publishing needs no Spark: a Python task in the worker, like the report.
    for task_id in ("publish", "report"):
        assert "SparkSubmitOperator" not in d["tasks"][task_id]["operator"], task_id
        assert d["tasks"][task_id]["operator"][0] == "_PythonDecoratedOperator", task_id
    assert d["tasks"]["finish"]["trigger_rule"] == "all_done"
    assert all(t["backoff"] > 0 for t in d["tasks"].values())
    assert d["deadlines"] == [
        {
            "reference": "DagRunQueuedAtDeadline",  # asset-triggered runs have no logical date
            "seconds": 4 * 3600,
            "callback": "inference_ledger.orchestration.alerts.deadline_missed",
        }
    ]


def test_ingest_dags_each_produce_their_asset(dagbag):
    for source, uri in orchestration.ASSET_URIS.items():
        d = dagbag["dags"][f"ledger_ingest_{source}"]
        assert d["timetable"] == "CronDataIntervalTimetable"
        assert d["params"] == ["end", "landing", "start"]
        tasks = d["tasks"]
        expected = {
            "prepare": [],
            "ingest": ["prepare"],
            "announce": ["ingest", "prepare"],
            "finish": ["announce"],
        }
        if source == "billing":  # waits for a complete export run on an object-store landing
            expected.update(wait_for_export_run=[], prepare=["wait_for_export_run"])
            sensor = tasks["wait_for_export_run"]
            assert sensor["operator"][:2] == ["ExportRunSensor", "BaseSensorOperator"]
        assert {t: v["upstream"] for t, v in tasks.items()} == expected
        assert tasks["announce"]["outlets"] == [uri]
        # Only its own source, through the provider's SparkSubmitOperator.
        ingest = tasks["ingest"]
        assert ingest["operator"][:2] == ["LedgerSparkSubmitOperator", "SparkSubmitOperator"]
        assert (ingest["conn_id"], ingest["job"]) == ("spark_default", "ingest")
        assert ingest["job_args"] == ["--sources", source, "--fail-on-failed-months"]
        # Lake writers never overlap: one slot in this pool across the three DAGs.
        assert tasks["ingest"]["pool"] == orchestration.LAKE_POOL
        assert tasks["finish"]["trigger_rule"] == "all_done"


def test_quarterly_close_wiring(dagbag):
    d = dagbag["dags"]["ledger_quarterly_close"]
    assert d["timetable"] == "CronDataIntervalTimetable"
    assert d["params"] == ["accept_exceptions", "period", "reason"]
    assert list(d["tasks"]) == ["close"]


def test_the_dag_folder_has_exactly_these_dags(dagbag):
    assert sorted(dagbag["dags"]) == [
        "ledger_ingest_billing",
        "ledger_ingest_finance",
        "ledger_ingest_usage",
        "ledger_nightly",
        "ledger_quarterly_close",
    ]


@pytest.mark.parametrize("path", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_dag_file_parses_cheaply(airflow_env, path):
    code, result, output = _run(PARSE_COST, str(path), env=airflow_env, timeout=120)
    assert code == 0 and result is not None, _tail(output)
    # What the DAG file pulls in beyond Airflow and the standard library: only the light
    # orchestration module and the spark provider's operator with its HTTP client (no Spark,
    # Great Expectations, database driver, contracts or pipeline at parse time).
    new = result["modules"]
    spark_provider = {"requests", "urllib3", "charset_normalizer", "idna", "certifi", "tenacity"}
    allowed = {"airflow", "inference_ledger", *spark_provider, *sys.stdlib_module_names}
    assert {m.split(".")[0] for m in new} <= allowed, new
    assert {m for m in new if m.startswith("inference_ledger")} <= {
        "inference_ledger",
        "inference_ledger.airflow_compat",
        "inference_ledger.airflow_defaults",
        "inference_ledger.airflow_sensors",
        "inference_ledger.airflow_spark",
        "inference_ledger.orchestration",
        "inference_ledger.orchestration.alerts",
        "inference_ledger.orchestration.errors",
        "inference_ledger.orchestration.partition",
        "inference_ledger.orchestration.spark_submit",
        "inference_ledger.orchestration.tasks",
        "inference_ledger.orchestration.wiring",
        "inference_ledger.periods",
        "inference_ledger.settings",
    }
    assert result["seconds"] < 2.0


# ---------------------------------------------------------------- partition of a run


def test_scheduled_run_partition_is_its_data_interval():
    start = datetime(2024, 3, 31, 2, tzinfo=UTC)
    assert orchestration.partition(interval_start=start, interval_end=start + timedelta(1)) == (
        date(2024, 3, 31),
        date(2024, 4, 1),
    )
    assert orchestration.as_of_date(None, start + timedelta(1)) == date(2024, 4, 1)


def test_params_override_the_data_interval_each_side():
    start = datetime(2024, 3, 31, 2, tzinfo=UTC)
    end = start + timedelta(days=1)
    kw = {"interval_start": start, "interval_end": end}
    assert orchestration.partition(start="2024-01-01", end="2024-04-01", **kw) == (
        date(2024, 1, 1),
        date(2024, 4, 1),
    )
    assert orchestration.partition(start="2024-01-01", **kw) == (date(2024, 1, 1), date(2024, 4, 1))
    assert orchestration.as_of_date("2026-11-27", end) == date(2026, 11, 27)


def test_manual_run_without_data_interval_is_yesterday():
    triggered = datetime(2025, 1, 1, 0, 30, tzinfo=UTC)
    assert orchestration.partition(run_after=triggered) == (date(2024, 12, 31), date(2025, 1, 1))
    assert orchestration.as_of_date(None, None, triggered) == date(2025, 1, 1)
    assert orchestration.partition(start="2024-01-01", end="2024-04-01", run_after=triggered) == (
        date(2024, 1, 1),
        date(2024, 4, 1),
    )


def test_a_sub_day_interval_still_covers_its_day():
    start = datetime(2024, 3, 31, 2, tzinfo=UTC)
    assert orchestration.partition(
        interval_start=start, interval_end=start + timedelta(hours=1)
    ) == (
        date(2024, 3, 31),
        date(2024, 4, 1),
    )


def test_bad_params_are_param_errors():
    with pytest.raises(orchestration.ParamError, match="not a date"):
        orchestration.partition(start="2024-13-01", run_after=datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(orchestration.ParamError, match="empty partition"):
        orchestration.partition(start="2024-04-01", end="2024-01-01")


def test_landing_defaults_to_env_then_ledger_home(monkeypatch, tmp_path):
    monkeypatch.setenv("LEDGER_LANDING", str(tmp_path / "in"))
    assert orchestration.default_landing() == tmp_path / "in"
    monkeypatch.delenv("LEDGER_LANDING")
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path))
    assert orchestration.default_landing() == tmp_path.resolve() / "landing"


def test_asset_triggered_run_covers_the_partitions_of_its_events():
    # Airflow 3: no logical date and no data interval; the ingest DAGs' events carry theirs.
    extras = [
        {"source": "billing", "start": "2024-03-31", "end": "2024-04-01"},
        {"source": "usage", "start": "2024-03-30", "end": "2024-03-31"},
        {},  # an event from elsewhere, without a partition
    ]
    triggered = datetime(2024, 4, 1, 1, 40, tzinfo=UTC)
    assert orchestration.partition(run_after=triggered, asset_extras=extras) == (
        date(2024, 3, 30),
        date(2024, 4, 1),
    )
    # Without usable extras: yesterday, as for a manual run; params still win.
    assert orchestration.partition(run_after=triggered, asset_extras=[{}]) == (
        date(2024, 3, 31),
        date(2024, 4, 1),
    )
    assert orchestration.partition(
        start="2024-01-01", run_after=triggered, asset_extras=extras
    ) == (date(2024, 1, 1), date(2024, 4, 1))


def test_triggering_extras_reads_every_event():
    from types import SimpleNamespace as NS

    events = {"a": [NS(extra={"start": "2024-01-01"}), NS(extra=None)], "b": [NS(extra={})]}
    assert orchestration.triggering_extras(events) == [{"start": "2024-01-01"}, {}, {}]
    assert orchestration.triggering_extras(None) == []


def test_quarter_to_close_is_the_quarter_that_just_ended():
    # Scheduled run of "0 6 20 1,4,7,10 *": interval [Jan 20, Apr 20) closes Q1.
    assert orchestration.quarter_to_close(None, datetime(2024, 4, 20, 6, tzinfo=UTC)) == "2024-Q1"
    assert orchestration.quarter_to_close(None, datetime(2025, 1, 20, 6, tzinfo=UTC)) == "2024-Q4"
    # Manual run, no logical date: the quarter before the one it was triggered in.
    assert orchestration.quarter_to_close(None, None, datetime(2024, 5, 3, tzinfo=UTC)) == "2024-Q1"
    assert orchestration.quarter_to_close("2023-Q4") == "2023-Q4"
    with pytest.raises(orchestration.ParamError):
        orchestration.quarter_to_close("2024-Q5")


def test_spark_target_reads_the_connection_like_the_spark_provider(monkeypatch):
    from types import SimpleNamespace as NS

    monkeypatch.setenv("LEDGER_SPARK_MASTER", "local[2]")
    assert orchestration.spark_target(None).master == "local[2]"
    monkeypatch.delenv("LEDGER_SPARK_MASTER")
    assert orchestration.spark_target(None).master == "local[*]"
    # AIRFLOW_CONN_SPARK_DEFAULT=spark://spark-master:7077 (URI form)
    uri = NS(conn_type="spark", host="spark-master", port=7077, extra_dejson={})
    assert orchestration.spark_target(uri).master == "spark://spark-master:7077"
    # A host holding the whole master (JSON form), with extras.
    conf = {"spark.hadoop.fs.s3a.path.style.access": "true"}
    local = NS(
        conn_type="spark",
        host="local[*]",
        port=None,
        extra_dejson={
            "deploy-mode": "client",
            "spark-binary": "/opt/spark/bin/spark-submit",
            "conf": conf,
        },
    )
    target = orchestration.spark_target(local)
    assert target.master == "local[*]"
    assert target.deploy_mode == "client"
    assert target.binary == "/opt/spark/bin/spark-submit"
    assert target.conf == conf
    k8s = NS(conn_type="k8s", host="https://k8s.example:6443", port=None, extra_dejson={})
    assert orchestration.spark_target(k8s).master == "k8s://https://k8s.example:6443"


def test_spark_submit_command_carries_the_run_and_no_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("LEDGER_DATABASE_URL", "postgresql://loader:s3cret@db/ledger")
    monkeypatch.setenv("LEDGER_SPARK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1")
    archive = tmp_path / "spark.jsa"
    archive.write_bytes(b"\0")
    monkeypatch.setenv("LEDGER_SPARK_CLASS_ARCHIVE", str(archive))
    target = orchestration.SparkTarget(
        master="spark://127.0.0.1:7077", conf={"spark.executor.memory": "1g"}
    )
    run = {
        "run_id": "run-x",
        "landing": "/data/landing",
        "start": "2024-03-31",
        "end": "2024-04-01",
        "as_of": "2024-04-01",
    }
    cmd = orchestration.spark_submit_command("aggregate", run, target)
    assert cmd[0].endswith("spark-submit")
    assert cmd[cmd.index("--master") + 1] == "spark://127.0.0.1:7077"
    assert "spark.executor.memory=1g" in cmd
    # The job's JVMs map the class-data archive (inference_ledger/spark_archive.py).
    options = (
        f"-XX:-DontCompileHugeMethods -XX:SharedArchiveFile={archive}"
        " -Xlog:cds=off -Xlog:cds+dynamic=off -XX:TieredStopAtLevel=1"
    )
    assert f"spark.executor.extraJavaOptions={options}" in cmd
    driver = next(p for p in cmd if p.startswith("spark.driver.extraJavaOptions="))
    assert driver.endswith(f" {options}")
    job = cmd.index(str(REPO / "jobs" / "aggregate.py"))
    assert cmd[job + 1 :] == [
        "--run-id", "run-x", "--landing", "/data/landing", "--start", "2024-03-31",
        "--end", "2024-04-01", "--as-of", "2024-04-01",
    ]  # fmt: skip
    assert not any("s3cret" in part for part in cmd)
    ingest = orchestration.spark_submit_command(
        "ingest", run, target, job_args=["--fail-on-failed-months"]
    )
    assert ingest[-1] == "--fail-on-failed-months"  # the ingest DAGs' job fails on them
    env = orchestration.spark_submit_env(target)
    assert env["LEDGER_SPARK_MASTER"] == "spark://127.0.0.1:7077"
    assert env["LEDGER_DATABASE_URL"].endswith("@db/ledger")  # secrets travel in env only


# Runs the ingest step's LedgerSparkSubmitOperator once per exit code of a stand-in
# `spark-submit` (first on PATH: the provider's hook runs it by name), outside a task.
OPERATOR_EXIT = """
import json, os, sys
from airflow.sdk.exceptions import AirflowFailException
from inference_ledger.airflow_spark import LedgerSparkSubmitOperator

run = json.loads(os.environ["RUN"])

class TaskInstance:
    def xcom_pull(self, task_ids=None, key="return_value", default=None):
        return run if task_ids == "prepare" else default

out = {}
for code in sys.argv[2:]:
    os.environ["FAKE_EXIT"] = code
    op = LedgerSparkSubmitOperator(task_id="ingest", job="ingest", job_args=["--sources", "usage"])
    try:
        op.execute({"ti": TaskInstance()})
        out[code] = None
    except Exception as exc:
        out[code] = [type(exc).__name__, isinstance(exc, AirflowFailException), str(exc)]
# No connection `spark_default`: the master is $LEDGER_SPARK_MASTER (the hook alone: yarn).
del os.environ["AIRFLOW_CONN_SPARK_DEFAULT"]
os.environ.update(LEDGER_SPARK_MASTER="local[3]", FAKE_EXIT="0", FAKE_ARGS=sys.argv[1] + ".2")
LedgerSparkSubmitOperator(task_id="aggregate", job="aggregate").execute({"ti": TaskInstance()})
print("RESULT " + json.dumps(out))
"""

FAKE_SPARK_SUBMIT = """#!/bin/sh
printf '%s\\n' "$@" > "$FAKE_ARGS"
echo "LEDGER_SPARK_MASTER=$LEDGER_SPARK_MASTER" >> "$FAKE_ARGS"
echo "ledger job: input error: usage/x.jsonl line 3 field model: missing"
exit "$FAKE_EXIT"
"""


def test_spark_steps_fail_fast_on_data_errors_and_retry_the_rest(airflow_env, tmp_path):
    """Exit 2 (InputError) and 3 (QualityGateFailed) of a job become AirflowFailException (no
    retry, the job's own message kept); exit 1 stays an AirflowException, which the task's
    retries (with exponential backoff, see the house rules) take. The command line is the
    provider's, at the `spark_default` connection's master, and carries no secret."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "spark-submit"
    fake.write_text(FAKE_SPARK_SUBMIT)
    fake.chmod(0o755)
    args_file = tmp_path / "args.txt"
    env = {
        **airflow_env,
        "PATH": f"{bin_dir}{os.pathsep}{airflow_env.get('PATH', '')}",
        "FAKE_ARGS": str(args_file),
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "LEDGER_DATABASE_URL": "postgresql://loader:s3cret@db/ledger",
    }
    run = {
        "run_id": "run-x",
        "landing": "/data/landing",
        "start": "2024-03-31",
        "end": "2024-04-01",
        "as_of": "2024-04-01",
    }
    env["RUN"] = json.dumps(run)
    code, result, output = _run(
        OPERATOR_EXIT, str(args_file), "0", "1", "2", "3", env=env, timeout=120
    )
    assert code == 0 and result is not None, _tail(output)
    assert result["0"] is None
    assert result["1"][:2] == ["AirflowException", False]  # retried
    message = "ledger job: input error: usage/x.jsonl line 3 field model: missing"
    assert result["2"] == [
        "AirflowFailException",
        True,
        f"DataError: ingest job: InputError (exit 2): {message}",
    ]
    assert result["3"][:2] == ["AirflowFailException", True]
    assert result["3"][2].startswith("DataError: ingest job: QualityGateFailed (exit 3)")
    argv = args_file.read_text().splitlines()
    assert argv[:2] == ["--master", "local[2]"]
    job = argv.index(str(REPO / "jobs" / "ingest.py"))
    assert argv[job + 1 :] == [
        "--run-id", "run-x", "--landing", "/data/landing", "--start", "2024-03-31",
        "--end", "2024-04-01", "--as-of", "2024-04-01", "--sources", "usage",
        "LEDGER_SPARK_MASTER=local[2]",
    ]  # fmt: skip
    assert not any("s3cret" in a for a in argv)
    argv = Path(f"{args_file}.2").read_text().splitlines()
    assert argv[:2] == ["--master", "local[3]"]
    assert argv[-1] == "LEDGER_SPARK_MASTER=local[3]"


def test_backfill_creates_one_run_per_day_each_publishing_its_quarter(airflow_db):
    """`airflow backfill create` over a date range: the runs it creates (dry run) are
    time-based runs with a data interval, whose partitions widen to the quarters published."""
    env = dict(airflow_db)
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "reserialize"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, _tail(done.stdout + done.stderr)
    done = subprocess.run(
        [
            sys.executable, "-m", "airflow", "backfill", "create", "--dag-id", "ledger_nightly",
            "--from-date", "2024-03-30", "--to-date", "2024-04-02", "--dry-run",
        ],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, _tail(done.stdout + done.stderr)
    logical = re.findall(r"\| (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00:00) \|", done.stdout)
    dates = [datetime.fromisoformat(x) for x in logical]
    assert dates == [datetime(2024, 3, d, 3, tzinfo=UTC) for d in (30, 31)] + [
        datetime(2024, 4, d, 3, tzinfo=UTC) for d in (1,)
    ], done.stdout
    # Each run's data interval is [logical date, +1 day) of the 03:00 cron.
    partitions = [
        orchestration.partition(interval_start=d, interval_end=d + timedelta(days=1)) for d in dates
    ]
    assert partitions == [
        (date(2024, 3, 30), date(2024, 3, 31)),
        (date(2024, 3, 31), date(2024, 4, 1)),
        (date(2024, 4, 1), date(2024, 4, 2)),
    ]
    from inference_ledger.periods import quarters_between

    assert [[q.label for q in quarters_between(*p)] for p in partitions] == [
        ["2024-Q1"],
        ["2024-Q1"],
        ["2024-Q2"],
    ]


# ---------------------------------------------------------------- airflow dags test


def test_the_dags_test_shim_is_for_the_affected_airflow_versions_only():
    assert airflow_compat.version_tuple("3.3.2") == (3, 3, 2)
    assert airflow_compat.version_tuple("3.4.0rc1") == (3, 4, 0)
    assert airflow_compat.version_tuple("3.3") == (3, 3, 0)
    assert [
        airflow_compat.is_affected(v) for v in ("3.1.8", "3.2.0", "3.3.1", "3.3.2", "3.3.3")
    ] == [False, True, True, True, False]

    class Dag:  # what fix_dags_test reads of a DAG
        def __init__(self, deadline):
            self.deadline = deadline

    alerted, plain = Dag(["an alert"]), Dag(None)
    assert "test" in vars(airflow_compat.fix_dags_test(alerted, version="3.3.2"))
    assert "test" not in vars(airflow_compat.fix_dags_test(Dag(["an alert"]), version="3.3.3"))
    assert "test" not in vars(airflow_compat.fix_dags_test(plain, version="3.3.2"))


def test_dag_test_of_ledger_nightly_succeeds_with_its_deadline_alert(airflow_db):
    """Airflow's own DAG.test() of ledger_nightly crashes at the end of a successful run on
    the installed Airflow (apache/airflow#73428), leaving the run `running`; the DAG file's,
    with the shim, succeeds. If an Airflow upgrade fails this, see airflow_compat."""
    code, result, output = _run(
        DAG_TEST, str(DAGS), "ledger_nightly", "2024-03-29T03:00:00+00:00", env=airflow_db,
        timeout=180,
    )  # fmt: skip
    assert code == 0 and result is not None, _tail(output)
    # Shimmed on the affected versions (the pinned 3.3.2 is); outside them Airflow itself
    # must not crash, else AFFECTED_VERSIONS needs widening.
    affected = airflow_compat.is_affected(result["airflow"])
    assert result["shimmed"] is affected
    if affected:
        # The id lookup given a definition: "can't adapt type 'dict'" on a Postgres metadata
        # database ("'dict' object has no attribute 'hex'" on SQLite).
        error = result["unshimmed_error"] or ""
        assert "can't adapt type 'dict'" in error and "FROM deadline_alert" in error, error
    else:
        assert result["unshimmed_error"] is None, result
    assert result["state"] == "success"
    # The crashed run (same logical date) was replaced by the second: nothing left running.
    rows = _metadata_query(
        airflow_db["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        "SELECT run_id, state FROM dag_run WHERE dag_id = %s AND logical_date = %s",
        "ledger_nightly", "2024-03-29T03:00:00+00:00",
    )  # fmt: skip
    assert rows == [(result["run_id"], "success")]


def test_airflow_dags_test_of_ledger_nightly_exits_0_and_keeps_its_deadline_alert(airflow_db):
    """`airflow dags test ledger_nightly DATE`, every task marked success (no Spark, no ledger
    database: what is tested is the end of a successful run), exits 0 with the run `success`;
    the serialized DAG the scheduler runs still has the 4-hour DeadlineAlert."""
    code, result, output = _dag_test(
        "ledger_nightly", "2024-03-30T03:00:00+00:00", {}, airflow_db,
        "--mark-success-pattern", ".*", timeout=180,
    )  # fmt: skip
    assert code == 0 and result is not None, _tail(output)
    assert result["state"] == "success"
    assert {t: v["state"] for t, v in result["tasks"].items()} == {
        t: "success" for t in ("prepare", "aggregate", "publish", "report", "finish")
    }
    metadata = airflow_db["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "running" not in _airflow_runs(metadata, "ledger_nightly").values()
    alerts = _metadata_query(
        metadata,
        "SELECT a.reference, a.callback_def FROM deadline_alert a"
        " JOIN serialized_dag s ON s.id = a.serialized_dag_id"
        " WHERE s.dag_id = %s AND s.dag_version_id = ("
        "   SELECT created_dag_version_id FROM dag_run WHERE dag_id = %s AND run_id = %s)",
        "ledger_nightly", "ledger_nightly", result["run_id"],
    )  # fmt: skip
    assert [(ref["reference_type"], cb["__data__"]["path"]) for ref, cb in alerts] == [
        ("DagRunQueuedAtDeadline", "inference_ledger.orchestration.alerts.deadline_missed")
    ]


# ---------------------------------------------------------------- end to end, with the CLI


@pytest.fixture(scope="module")
def ledger_env(airflow_db, pg_url, ledger_home) -> dict[str, str]:
    """An Airflow subprocess' environment on this test run's LEDGER_HOME: it reuses the
    embedded Postgres the `pg_url` fixture started there. The Spark master comes from the
    `spark_default` connection, as in a deployment (JSON form: the host is the master)."""
    env = {k: v for k, v in airflow_db.items() if k != "LEDGER_DATABASE_URL"}
    env.update(
        LEDGER_HOME=str(ledger_home),
        LEDGER_SPARK_MASTER="local[1]",  # overridden by the connection
        LEDGER_SHUFFLE_PARTITIONS="2",
        LEDGER_SPARK_DRIVER_MEMORY="1g",
        AIRFLOW_CONN_SPARK_DEFAULT=json.dumps({"conn_type": "spark", "host": "local[2]"}),
    )
    env.pop("LEDGER_LANDING", None)
    env.pop("LEDGER_LAKE_URI", None)
    return env


def _ledger_run(conn, dag_id: str, airflow_run_id: str) -> dict:
    keys = (
        "run_id",
        "status",
        "period_start",
        "period_end",
        "landing_dir",
        "error",
        "spark_master",
    )
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(keys)} FROM audit.runs WHERE command = %s",
            (f"airflow:{dag_id}/{airflow_run_id}",),
        )
        rows = cur.fetchall()
    conn.commit()
    assert len(rows) == 1, rows
    return dict(zip(keys, rows[0], strict=True))


def _dag_test(
    dag_id: str, logical_date: str, conf: dict, env: dict, *options: str, timeout: float = 420
):
    """`airflow dags test DAG_ID LOGICAL_DATE [--conf CONF] OPTIONS`, the CLI users run, in
    `env`; returns (its exit code, the DAG run it made as Airflow's metadata database holds it
    (`_airflow_run`), or None if it made none, its output)."""
    metadata = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    before = set(_airflow_runs(metadata, dag_id))
    args = ["dags", "test", dag_id, logical_date, *options]
    if conf:
        args += ["--conf", json.dumps(conf)]
    done = subprocess.run(
        [str(airflow_support.BIN / "airflow"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    made = set(_airflow_runs(metadata, dag_id)) - before
    result = _airflow_run(metadata, dag_id, made.pop()) if len(made) == 1 else None
    return done.returncode, result, done.stdout + done.stderr


def _metadata_query(metadata: str, query: str, *params) -> list[tuple]:
    """Rows of `query` on Airflow's metadata database (SQLAlchemy URL of the Airflow env)."""
    from inference_ledger.db import connect

    conn = connect(metadata)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            rows = cur.fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def _airflow_runs(metadata: str, dag_id: str) -> dict[str, str]:
    """run id -> state of every DAG run of `dag_id` in Airflow's metadata database."""
    return dict(
        _metadata_query(metadata, "SELECT run_id, state FROM dag_run WHERE dag_id = %s", dag_id)
    )


def _airflow_run(metadata: str, dag_id: str, run_id: str) -> dict:
    """A DAG run as Airflow recorded it: its state, its tasks' states and tries, and the asset
    events it emitted (uri, the keys of `extra`, the partition `extra` carries)."""
    key = (dag_id, run_id)
    tasks = _metadata_query(
        metadata,
        "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s",
        *key,
    )
    events = _metadata_query(
        metadata,
        "SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id"
        " WHERE e.source_dag_id = %s AND e.source_run_id = %s ORDER BY e.id",
        *key,
    )
    return {
        "run_id": run_id,
        "state": _airflow_runs(metadata, dag_id)[run_id],
        "tasks": {t: {"state": state, "try_number": tries} for t, state, tries in tasks},
        "asset_events": [
            {
                "uri": uri,
                "extra_keys": sorted(extra),
                "start": extra.get("start"),
                "end": extra.get("end"),
            }
            for uri, extra in events
        ],
    }


def _input_files(conn, run_id: str) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT path FROM audit.input_files WHERE run_id = %s ORDER BY 1", (run_id,))
        rows = [r[0] for r in cur.fetchall()]
    conn.commit()
    return rows


def _lake_files(lake: Path, table: str) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in (lake / table).rglob("*") if p.is_file()}


# An ingest DAG run's tasks; on a local landing the billing sensor passes at once.
_INGEST_TASKS = {
    source: ("prepare", "ingest", "announce", "finish")
    + (("wait_for_export_run",) if source == "billing" else ())
    for source in ("billing", "usage", "finance")
}


def _ingest_dag(source: str, env: dict, conn) -> list[str]:
    """`airflow dags test ledger_ingest_SOURCE` dated 2024-03-31: checks that the DAG run, its
    tasks and its ledger run succeeded and that it emitted its asset; returns the files its
    ledger run recorded."""
    dag_id = f"ledger_ingest_{source}"
    code, result, output = _dag_test(dag_id, "2024-03-31T01:00:00+00:00", {}, env)
    assert code == 0 and result is not None, _tail(output)
    assert result["state"] == "success"
    assert {t: v["state"] for t, v in result["tasks"].items()} == {
        t: "success" for t in _INGEST_TASKS[source]
    }
    assert [e["uri"] for e in result["asset_events"]] == [orchestration.ASSET_URIS[source]]
    run = _ledger_run(conn, dag_id, result["run_id"])
    assert run["status"] == "succeeded", run
    return _input_files(conn, run["run_id"])


@pytest.mark.slow
def test_ingest_then_nightly_publish_the_quarter_like_ledger_run(
    ledger_env, ledger_home, cli_baseline, pg_conn, pg_url, spark
):
    """The three ingest DAGs (each its asset and only its own files; billing also the FX
    rates it converts with), then the nightly run for the last day of 2024-Q1, each with
    `airflow dags test DAG DATE` (the CLI), their Spark steps through SparkSubmitOperator; the
    marts equal those of `ledger run` over the same landing and quarter, as of the same day."""
    from tests.cli_baseline import PERIOD, mart_digests

    # The generated 2024-Q1 landing, and the marts `ledger run` published from it (--start
    # 2024-01-01 --end 2024-04-01 --as-of 2024-04-01) in its own home and database.
    landing, cli_url = cli_baseline
    env = {**ledger_env, "LEDGER_LANDING": str(landing)}  # the `landing` param's default

    # A manual ingest run dated 2024-03-31 (`airflow dags test` makes a manual run): its
    # partition is that day, [03-31, 04-01).
    code, result, output = _dag_test("ledger_ingest_billing", "2024-03-31T01:00:00+00:00", {}, env)
    assert code == 0 and result is not None, _tail(output)
    assert result["state"] == "success"
    assert {t: v["state"] for t, v in result["tasks"].items()} == {
        t: "success" for t in _INGEST_TASKS["billing"]
    }
    assert result["asset_events"] == [
        {
            "uri": orchestration.ASSET_URIS["billing"],
            "extra_keys": sorted(
                [
                    "source",
                    "run_id",
                    "start",
                    "end",
                    "files",
                    "rows_read",
                    "rows_loaded",
                    "rows_quarantined",
                ]
            ),  # fmt: skip
            "start": "2024-03-31",
            "end": "2024-04-01",
        }
    ]
    ingest_run = _ledger_run(pg_conn, "ledger_ingest_billing", result["run_id"])
    assert ingest_run["status"] == "succeeded", ingest_run
    assert ingest_run["spark_master"] == "local[2]"  # from the spark_default connection
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), sum(rows_read) FROM audit.input_files WHERE run_id = %s",
            (ingest_run["run_id"],),
        )
        files, rows_read = cur.fetchone()
    pg_conn.commit()
    assert files > 0 and rows_read > 0
    # Its own source only: billing exports, and the FX rates billing amounts convert with.
    root = landing.resolve()
    recorded = _input_files(pg_conn, ingest_run["run_id"])
    assert any(f.startswith(f"{root}/billing/") for f in recorded)
    assert {f for f in recorded if not f.startswith(f"{root}/billing/")} == {
        str(p) for p in (root / "finance" / "fx").glob("*.csv*")
    }

    # The usage and finance DAGs' ingest (`--sources usage`, `--sources finance`): each
    # records only its own files and leaves the others' lake tables as they were.
    lake = ledger_home / "lake"
    billing_before = _lake_files(lake, "billing_lines")
    recorded = _ingest_dag("usage", env, pg_conn)
    assert recorded and all(f.startswith(f"{root}/usage/") for f in recorded)
    assert _lake_files(lake, "billing_lines") == billing_before
    usage_before = _lake_files(lake, "usage_facts")
    recorded = _ingest_dag("finance", env, pg_conn)
    assert recorded and all(f.startswith(f"{root}/finance/") for f in recorded)
    assert _lake_files(lake, "billing_lines") == billing_before
    assert _lake_files(lake, "usage_facts") == usage_before

    # The manual nightly run dated 2024-03-31, judged as of 2024-04-01 (the end of its day).
    # Its partition, the day 2024-03-31, is widened to the quarter, so it publishes 2024-Q1.
    code, result, output = _dag_test("ledger_nightly", "2024-03-31T03:00:00+00:00", {}, env)
    assert code == 0 and result is not None, _tail(output)
    assert result["state"] == "success"
    assert {t: v["state"] for t, v in result["tasks"].items()} == {
        t: "success" for t in ("prepare", "aggregate", "publish", "report", "finish")
    }

    run = _ledger_run(pg_conn, "ledger_nightly", result["run_id"])
    assert run["status"] == "succeeded", run
    assert (run["period_start"], run["period_end"]) == (date(2024, 1, 1), date(2024, 4, 1))
    assert run["landing_dir"] == str(landing.resolve())
    assert run["error"] is None

    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT inference_spend_usd, revshare_paid_usd, implied_revenue_usd"
            " FROM marts.quarterly_summary WHERE period_label = '2024-Q1'"
        )
        assert cur.fetchall() == [
            (Decimal("546800000.00"), Decimal("77300000.00"), Decimal("386500000.00"))
        ]
        cur.execute(
            "SELECT DISTINCT direction FROM marts.revshare_reconciliation"
            " WHERE period_label = '2024-Q1' ORDER BY direction"
        )
        assert [r[0] for r in cur.fetchall()] == ["payable", "receivable"]
    pg_conn.commit()
    assert (ledger_home / "reports" / "2024-Q1" / "index.html").is_file()

    # `ledger run` on the same landing, quarter and as-of date: the same marts, row for row.
    assert mart_digests(pg_url, *PERIOD) == mart_digests(cli_url, *PERIOD)


@pytest.mark.slow
def test_bad_input_fails_the_run_at_once_and_is_recorded(ledger_env, tmp_path, pg_conn):
    """`airflow dags test` of an ingest DAG on a landing folder that does not exist exits 1
    and leaves nothing `running`: the DAG run is failed in Airflow, the ledger run in
    audit.runs."""
    missing = tmp_path / "no-such-landing"
    code, result, output = _dag_test(
        "ledger_ingest_usage", "2024-04-02T01:10:00+00:00", {"landing": str(missing)}, ledger_env
    )
    assert code == 1 and result is not None, _tail(output)
    assert "DagRun failed" in output
    assert result["state"] == "failed"
    metadata = ledger_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "running" not in _airflow_runs(metadata, "ledger_ingest_usage").values()
    tasks = result["tasks"]
    assert {t: v["state"] for t, v in tasks.items()} == {
        "prepare": "success",
        "ingest": "failed",
        "announce": "upstream_failed",
        "finish": "failed",  # it recorded the failure, then failed the DAG run
    }
    assert tasks["ingest"]["try_number"] == 1  # bad input (job exit code 2) is not retried
    assert result["asset_events"] == []  # no asset event: ledger_nightly is not triggered

    run = _ledger_run(pg_conn, "ledger_ingest_usage", result["run_id"])
    assert run["status"] == "failed"
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM audit.runs WHERE command LIKE %s AND status = 'running'",
            ("airflow:ledger_ingest_usage/%",),
        )
        assert cur.fetchone() == (0,)
    pg_conn.commit()
    assert "ingest failed: DataError: ingest job: InputError (exit 2)" in run["error"]
    assert str(missing) in run["error"]


@pytest.mark.slow
def test_quarterly_close_freezes_the_quarter_that_just_ended(ledger_env, cli_baseline):
    """The run of 2024-04-20 (interval [Jan 20, Apr 20)) closes 2024-Q1, here in the database
    of the shared `ledger run` (so the other tests' quarters stay open); a second run finds it
    closed and succeeds with the same snapshot."""
    from inference_ledger.db import connect

    _, url = cli_baseline
    env = {**ledger_env, "LEDGER_DATABASE_URL": url}
    digests = []
    for _ in range(2):
        code, result, output = _dag_test(
            "ledger_quarterly_close", "2024-04-20T06:00:00+00:00", {}, env, timeout=240
        )
        assert code == 0 and result is not None, _tail(output)
        assert result["state"] == "success"
        assert result["tasks"]["close"]["state"] == "success"
        conn = connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT period_label, closed_by, snapshot_sha256 FROM audit.closed_periods"
                )
                rows = cur.fetchall()
            conn.commit()
        finally:
            conn.close()
        assert [r[0] for r in rows] == ["2024-Q1"]
        assert rows[0][1].startswith("airflow:ledger_quarterly_close/")
        digests.append(rows[0][2])
    assert digests[0] == digests[1]


class _Run:
    def __init__(self, run_type, logical_date):
        self.run_type, self.logical_date = run_type, logical_date


def test_a_manual_logical_date_picks_its_own_day():
    d = datetime(2024, 3, 31, tzinfo=UTC)
    interval = {"interval_start": d - timedelta(2), "interval_end": d - timedelta(1)}
    picked = orchestration.manual_logical_date(_Run("manual", d))
    assert orchestration.partition(logical_date=picked, **interval) == (
        date(2024, 3, 31),
        date(2024, 4, 1),
    )
    assert orchestration.manual_logical_date(_Run("scheduled", d)) is None
    assert orchestration.manual_logical_date(_Run("manual", None)) is None
    assert orchestration.partition(logical_date=None, **interval) == (
        date(2024, 3, 29),
        date(2024, 3, 30),
    )
    # Judged as of the end of its day, whatever Airflow inferred as the interval.
    end = interval["interval_end"]
    assert orchestration.as_of_date(None, end, logical_date=picked) == date(2024, 4, 1)
    assert orchestration.as_of_date(None, end, logical_date=None) == date(2024, 3, 30)
    assert orchestration.as_of_date("2024-05-01", end, logical_date=picked) == date(2024, 5, 1)
