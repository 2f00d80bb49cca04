"""Crash safety: a run SIGKILLed at every step boundary, and inside the publish transaction,
leaves the published marts exactly as the previous run left them (never a mix), and the next
run completes and equals an uninterrupted one.

The killed processes share this module's database; `inference_ledger.faults` kills them at the
named point (LEDGER_FAULT_KILL_AT). Up to the aggregate they are `ledger run` subprocesses
(`python -m inference_ledger.cli run`), each a run of its own. The run killed after its
aggregate is then published by the process that publishes in a deployment, the nightly DAG's
`publish` task (`orchestration.tasks.publish_run`, no Spark), killed after staging and again,
as a retry of that task would be, inside the publishing transaction: the same publish code a
`ledger run` runs, without two more pipeline runs of ~50 s each to get there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from inference_ledger.db import connect, database_url, is_embedded_running, stop_embedded
from inference_ledger.pipeline import run_pipeline
from inference_ledger.settings import Settings
from tests.reliability_support import (
    AS_OF,
    accounting_balances,
    blob_rows,
    copy_landing,
    generate_small,
    isolated_ledger,
    ledger_command,
    marts_hash,
    newest_run,
    query,
    subprocess_env,
    to_csv,
    write_export_run,
)
from tests.tmpdirs import private_tmp_dir

pytestmark = pytest.mark.slow

# In the order a run passes them; each kill starts from the debris of the one before.
RUN_KILL_POINTS = ["pipeline:after_prepare", "pipeline:after_ingest", "pipeline:after_aggregate"]
PUBLISH_KILL_POINTS = ["publish:after_stage", "publish:in_transaction"]
KILL_POINTS = RUN_KILL_POINTS + PUBLISH_KILL_POINTS
# The nightly DAG's publish task, as its worker runs it, for the run in argv[1] (a RunInfo).
PUBLISH_TASK = (
    "import json, sys; from inference_ledger.orchestration.tasks import publish_run; "
    "publish_run(json.loads(sys.argv[1]))"
)


def _version_b(a, b):
    """B = A + a restated January (a newer export run, one inference line $1.00 dearer) + a
    late February revenue entry: every mart differs between A and B."""
    copy_landing(a, b)
    manifest = newest_run(b, "20240101-20240131")
    header, rows = blob_rows(manifest)
    target = next(r for r in rows if '"workload": "inference"' in r["Tags"])
    target["CostInBillingCurrency"] = str(Decimal(target["CostInBillingCurrency"]) + 1)
    submitted = json.loads(manifest.read_text())["runInfo"]["submittedTime"]
    later = datetime.fromisoformat(submitted.replace("Z", "+00:00")) + timedelta(hours=1)
    write_export_run(
        b, manifest, to_csv(header, rows), submitted=later.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    (b / "finance" / "revenue" / "late.csv").write_text(
        "entry_id,entry_version,revenue_date,product_line,amount,currency,description\n"
        "late-1,1,2024-02-10,api,1000000.00,USD,late entry\n"
    )
    return b


@pytest.fixture(scope="module")
def ledger(spark, pg_url, reliability_baseline, tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    # A: the session's baseline landing, published once on a fresh ledger; this module's
    # ledger is a copy of that (database and lake). A is what every killed run must leave.
    a = reliability_baseline.landing
    b = _version_b(a, root / "b")
    # The reference for B: an uninterrupted run on a fresh ledger of its own.
    with isolated_ledger(pg_url, root / "ref_home", "crash_ref") as ref_url:
        run_pipeline(b, as_of=AS_OF, incremental=False)
        hash_b = marts_hash(ref_url)
    with isolated_ledger(pg_url, root / "home", "crash", copy_of=reliability_baseline) as url:
        hash_a = marts_hash(url)
        assert hash_a == reliability_baseline.hashes
        yield {"url": url, "a": a, "b": b, "hash_a": hash_a, "hash_b": hash_b, "root": root}


def test_the_two_versions_differ_in_every_mart(ledger):
    a, b = ledger["hash_a"], ledger["hash_b"]
    assert all(a[m] != b[m] for m in a), {m for m in a if a[m] == b[m]}


def _wait_group_gone(args, pgid: int) -> None:
    """Spark's JVM must not outlive the killed driver (it exits when its stdin closes)."""
    for _ in range(120):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    os.killpg(pgid, signal.SIGKILL)
    raise AssertionError(f"processes of {args} outlived the killed driver")


def _advisory_locks(url) -> int:
    return query(url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")[0][0]


def _wait_no_advisory_lock(url) -> None:
    # The server notices the dead client when it next reads its socket: at once, but not
    # synchronously with the kill.
    for _ in range(100):
        if _advisory_locks(url) == 0:
            return
        time.sleep(0.1)
    raise AssertionError("the killed run's advisory lock is still held")


def _killed(args: list[str], env: dict[str, str], point: str, url) -> dict:
    """`args` run in `env` until LEDGER_FAULT_KILL_AT=`point` kills it; what it left published."""
    proc = subprocess.Popen(
        args,
        env={**env, "LEDGER_FAULT_KILL_AT": point},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _, err = proc.communicate(timeout=600)
    _wait_group_gone(proc.args, proc.pid)
    _wait_no_advisory_lock(url)
    return {
        "point": point,
        "returncode": proc.returncode,
        "stderr": err[-2000:],
        "marts": marts_hash(url),
    }


def _run_ids(url) -> set[str]:
    return {r for (r,) in query(url, "SELECT run_id FROM audit.runs")}


@pytest.fixture(scope="module")
def kills(ledger):
    """Kill a run of B at every point in turn; after each, what is published is A exactly."""
    env = subprocess_env(LEDGER_HOME=str(ledger["root"] / "home"))
    url = env["LEDGER_DATABASE_URL"] = ledger["url"]
    before = _run_ids(url)
    out, runs = [], []
    for point in RUN_KILL_POINTS:
        known = _run_ids(url)
        run = [*ledger_command(), "run", "--landing", str(ledger["b"]), "--as-of", str(AS_OF)]
        out.append(_killed(run, env, point, url))
        [run_id] = _run_ids(url) - known
        runs.append(run_id)
    # The run killed after its aggregate, as the DAG hands it to its publish task.
    (start, end), = query(
        url, "SELECT period_start, period_end FROM audit.runs WHERE run_id = %s", (runs[-1],)
    )  # fmt: skip
    info = {"run_id": runs[-1], "landing": str(ledger["b"]), "start": str(start),
            "end": str(end), "as_of": str(AS_OF)}  # fmt: skip
    for point in PUBLISH_KILL_POINTS:
        task = [sys.executable, "-c", PUBLISH_TASK, json.dumps(info)]
        out.append(_killed(task, env, point, url))
    return {"points": out, "killed": _run_ids(url) - before, "runs": runs}


@pytest.mark.parametrize("index", range(len(KILL_POINTS)), ids=KILL_POINTS)
def test_killed_run_leaves_the_previous_marts_exactly(ledger, kills, index):
    k = kills["points"][index]
    assert k["returncode"] == -signal.SIGKILL, (k["point"], k["returncode"], k["stderr"])
    assert k["marts"] == ledger["hash_a"]


def test_next_run_completes_and_equals_an_uninterrupted_run(ledger, kills):
    result = run_pipeline(ledger["b"], as_of=AS_OF, incremental=False)
    url = ledger["url"]
    assert marts_hash(url) == ledger["hash_b"]
    assert query(url, "SELECT status FROM audit.runs WHERE run_id = %s", (result.run_id,)) == [
        ("succeeded",)
    ]
    # Every killed run is still visibly unfinished in the audit: nothing claims success.
    statuses = dict(query(url, "SELECT run_id, status FROM audit.runs"))
    # One run per `ledger run` killed; the publish task's kills were of the last one's run.
    assert kills["killed"] == set(kills["runs"]) and len(kills["runs"]) == len(RUN_KILL_POINTS)
    assert {statuses[r] for r in kills["killed"]} == {"running"}
    assert accounting_balances(url) == []
    # The published rows of every period come from the completed run.
    assert query(url, "SELECT DISTINCT run_id FROM audit.published_periods") == [(result.run_id,)]


def test_embedded_server_started_by_a_killed_run_keeps_serving(tmp_path):
    """No LEDGER_DATABASE_URL: the run starts the embedded Postgres itself, records the run,
    and is killed; the server outlives it and the next process uses it."""
    # Outside pytest's basetemp, which a concurrent pytest session may re-secure (0700)
    # under the server's feet.
    home = private_tmp_dir("ledger-crash-") / "home"
    env = subprocess_env(LEDGER_HOME=str(home), LEDGER_FAULT_KILL_AT="pipeline:after_prepare")
    env.pop("LEDGER_DATABASE_URL", None)
    proc = subprocess.run(
        [*ledger_command(), "run", "--landing", str(generate_small(tmp_path / "landing"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    settings = Settings(home=home.resolve(), database_url=None, spark_master="local[1]")
    try:
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
        assert is_embedded_running(settings)
        conn = connect(database_url(settings))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT command, status FROM audit.runs")
                assert cur.fetchall() == [("run", "running")]
        finally:
            conn.close()
    finally:
        stop_embedded(settings)
        shutil.rmtree(home.parent, ignore_errors=True)


def test_checkpoint_kills_only_at_the_named_point():
    code = (
        "import sys; from inference_ledger import faults; "
        "faults.checkpoint('pipeline:after_ingest'); print('passed', flush=True); "
        "faults.checkpoint('publish:after_stage'); print('not reached')"
    )
    env = subprocess_env(LEDGER_FAULT_KILL_AT="publish:after_stage")
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert (proc.returncode, proc.stdout) == (-signal.SIGKILL, "passed\n")
    # A misspelt kill point must not let a crash test pass without crashing.
    env["LEDGER_FAULT_KILL_AT"] = "publish:in_transation"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1 and "names no fault point" in proc.stderr
