"""The Airflow DAGs in dags/: they load, follow the house rules, parse cheaply, and
`ledger_nightly` runs end to end under `dag.test()` against the embedded Postgres.

Airflow reads its configuration when it is first imported, so everything that imports Airflow
runs in a subprocess with its own AIRFLOW_HOME and a SQLite metadata database; the tests
assert on the subprocess' result and query the marts themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from inference_ledger import orchestration

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
RESULT = "RESULT "

# The rules every DAG in dags/ follows.
LOAD_DAGS = """
import json, sys
from airflow.dag_processing.dagbag import DagBag

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
        "tasks": {
            t.task_id: {
                "owner": t.owner,
                "retries": t.retries,
                "backoff": t.retry_exponential_backoff,
                "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
                "upstream": sorted(t.upstream_task_ids),
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
for name in ("dag", "task", "Param", "TriggerRule", "CronDataIntervalTimetable"):
    getattr(sdk, name)  # warm Airflow's lazy imports: measure the DAG file, not Airflow

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

# Runs ledger_nightly once with dag.test(); prints the DAG run's state and its tasks'.
DAG_TEST = """
import json, sys
from datetime import datetime
from airflow.dag_processing.dagbag import DagBag

dags_folder, logical_date, conf = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
bag = DagBag(dag_folder=dags_folder)
assert not bag.import_errors, bag.import_errors
dag = bag.get_dag("ledger_nightly")
dr = dag.test(logical_date=datetime.fromisoformat(logical_date), run_conf=conf)
tasks = {
    ti.task_id: {"state": str(getattr(ti.state, "value", ti.state)), "try_number": ti.try_number}
    for ti in dr.get_task_instances()
}
state = str(getattr(dr.state, "value", dr.state))
print("RESULT " + json.dumps({"run_id": dr.run_id, "state": state, "tasks": tasks}))
sys.exit(0 if state == "success" else 1)
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
    """Environment of an Airflow subprocess: its own home and SQLite metadata DB, dags/ only."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
    )
    return env


@pytest.fixture(scope="session")
def airflow_db(airflow_env) -> dict[str, str]:
    """`airflow db migrate` on the SQLite metadata DB (dag.test() needs one)."""
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=airflow_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, _tail(done.stdout + done.stderr)
    return airflow_env


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
    assert d["timetable"] == "CronDataIntervalTimetable"  # a real data interval per run
    assert d["params"] == ["as_of", "end", "landing", "start"]
    upstream = {task_id: t["upstream"] for task_id, t in d["tasks"].items()}
    assert upstream == {
        "prepare": [],
        "ingest": ["prepare"],
        "aggregate": ["ingest", "prepare"],
        "publish": ["aggregate", "prepare"],
        "report": ["aggregate", "prepare", "publish"],
        "finish": ["report"],
    }
    assert d["tasks"]["finish"]["trigger_rule"] == "all_done"
    assert all(t["backoff"] > 0 for t in d["tasks"].values())


@pytest.mark.parametrize("path", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_dag_file_parses_cheaply(airflow_env, path):
    code, result, output = _run(PARSE_COST, str(path), env=airflow_env, timeout=120)
    assert code == 0 and result is not None, _tail(output)
    # What the DAG file pulls in beyond Airflow: only the light orchestration module (no Spark,
    # Great Expectations, database driver, contracts or pipeline at parse time).
    new = result["modules"]
    assert {m.split(".")[0] for m in new} <= {"airflow", "inference_ledger"}, new
    assert {m for m in new if m.startswith("inference_ledger")} <= {
        "inference_ledger",
        "inference_ledger.orchestration",
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


# ---------------------------------------------------------------- dag.test() end to end


@pytest.fixture(scope="module")
def ledger_env(airflow_db, pg_url, ledger_home) -> dict[str, str]:
    """An Airflow subprocess' environment on this test run's LEDGER_HOME: it reuses the
    embedded Postgres the `pg_url` fixture started there."""
    env = {k: v for k, v in airflow_db.items() if k != "LEDGER_DATABASE_URL"}
    env.update(
        LEDGER_HOME=str(ledger_home),
        LEDGER_SPARK_MASTER="local[2]",
        LEDGER_SHUFFLE_PARTITIONS="2",
    )
    env.pop("LEDGER_LANDING", None)
    return env


def _ledger_run(conn, airflow_run_id: str) -> dict:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT run_id, status, period_start, period_end, landing_dir, error"
            " FROM audit.runs WHERE command = %s",
            (f"airflow:ledger_nightly/{airflow_run_id}",),
        )
        rows = cur.fetchall()
    conn.commit()
    assert len(rows) == 1, rows
    keys = ("run_id", "status", "period_start", "period_end", "landing_dir", "error")
    return dict(zip(keys, rows[0], strict=True))


@pytest.mark.slow
def test_nightly_run_for_the_last_day_of_a_quarter_publishes_the_quarter(
    ledger_env, ledger_home, tmp_path_factory, pg_conn
):
    from inference_ledger.sample import generate_landing

    landing = tmp_path_factory.mktemp("landing")
    generate_landing(landing, start="2024-Q1", end="2024-Q1", scale=0.3)
    env = {**ledger_env, "LEDGER_LANDING": str(landing)}  # the `landing` param's default

    # The run for 2024-03-31: data interval [03-31 02:00, 04-01 02:00) UTC. Its partition,
    # the day 2024-03-31, is widened to the quarter, so the run publishes 2024-Q1.
    code, result, output = _run(
        DAG_TEST, str(DAGS), "2024-04-01T02:00:00+00:00", "{}", env=env, timeout=300
    )
    assert code == 0 and result is not None, _tail(output)
    assert result["state"] == "success"
    assert {t: v["state"] for t, v in result["tasks"].items()} == {
        t: "success" for t in ("prepare", "ingest", "aggregate", "publish", "report", "finish")
    }

    run = _ledger_run(pg_conn, result["run_id"])
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


@pytest.mark.slow
def test_bad_input_fails_the_run_at_once_and_is_recorded(ledger_env, tmp_path, pg_conn):
    missing = tmp_path / "no-such-landing"
    conf = json.dumps({"landing": str(missing)})
    code, result, output = _run(
        DAG_TEST, str(DAGS), "2024-04-02T02:00:00+00:00", conf, env=ledger_env, timeout=240
    )
    assert code == 1 and result is not None, _tail(output)
    assert result["state"] == "failed"
    tasks = result["tasks"]
    assert {t: v["state"] for t, v in tasks.items()} == {
        "prepare": "success",
        "ingest": "failed",
        "aggregate": "upstream_failed",
        "publish": "upstream_failed",
        "report": "upstream_failed",
        "finish": "failed",  # it recorded the failure, then failed the DAG run
    }
    assert tasks["ingest"]["try_number"] == 1  # an InputError is not retried

    run = _ledger_run(pg_conn, result["run_id"])
    assert run["status"] == "failed"
    assert "ingest failed: InputError" in run["error"]
    assert str(missing) in run["error"]
