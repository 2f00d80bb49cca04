"""Concurrency: two runs of overlapping periods started together. They share the lake, so the
second waits for the first (run lock), and publishing is serialised too (publish lock, shared
with close and reopen); each wait is announced, and nothing is counted twice."""

from __future__ import annotations

import logging
import subprocess
import threading
import time

import pytest

from inference_ledger.close import PUBLISH_LOCK_KEY
from inference_ledger.db import connect
from inference_ledger.pipeline import run_pipeline
from inference_ledger.run.store import LAKE_LOCK_KEY
from inference_ledger.sample import SCENARIO_QUARTERS
from tests.reliability_support import (
    AS_OF,
    accounting_balances,
    generate_small,
    isolated_ledger,
    ledger_command,
    query,
    subprocess_env,
)

pytestmark = pytest.mark.slow
WAITING_TO_RUN = "another run is in progress on this ledger; waiting for it to finish"
WAITING_TO_PUBLISH = "another run is publishing; waiting for it to finish"


def _lock_waiters(url) -> list[int]:
    """The advisory lock keys sessions are waiting for (keys below 2^32 are the objid)."""
    rows = query(
        url,
        "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND NOT granted ORDER BY 1",
    )
    return [r[0] for r in rows]


def test_two_overlapping_runs_publish_one_after_the_other(spark, pg_url, tmp_path, caplog):
    landing = generate_small(tmp_path / "landing")
    with isolated_ledger(pg_url, tmp_path / "home", "conc") as url:
        # The test holds the publish lock: the first run to take the run lock ingests and
        # aggregates, then waits to publish; the other waits to start. Both wait at once.
        holder = connect(url)
        holder.autocommit = True
        holder.cursor().execute("SELECT pg_advisory_lock(%s)", (PUBLISH_LOCK_KEY,))
        env = subprocess_env()
        other = subprocess.Popen(
            [*ledger_command(), "run", "--landing", str(landing), "--as-of", str(AS_OF)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        outcome: dict = {}

        def in_process():
            try:
                outcome["result"] = run_pipeline(landing, as_of=AS_OF)
            except BaseException as exc:  # reported by the assertion below
                outcome["error"] = exc

        caplog.set_level(logging.WARNING, logger="inference_ledger")
        mine = threading.Thread(target=in_process)
        mine.start()
        try:
            # A guard against hanging, not a timing assertion: a loaded machine is slow.
            for _ in range(7200):
                if len(_lock_waiters(url)) == 2 or other.poll() is not None or not mine.is_alive():
                    break
                time.sleep(0.5)
            both_waiting = _lock_waiters(url)
        finally:
            holder.cursor().execute("SELECT pg_advisory_unlock(%s)", (PUBLISH_LOCK_KEY,))
            holder.close()
        out, err = other.communicate(timeout=3600)
        mine.join(timeout=3600)

        assert both_waiting == sorted([LAKE_LOCK_KEY, PUBLISH_LOCK_KEY]), (err[-2000:], outcome)
        assert other.returncode == 0, err[-3000:]
        assert "error" not in outcome, outcome.get("error")
        # Whichever started first waited to publish; the other waited to run, then to publish
        # if the first still held the publish lock (so it may say both).
        said = {
            m for m in (WAITING_TO_RUN, WAITING_TO_PUBLISH) for t in (err, caplog.text) if m in t
        }
        assert said == {WAITING_TO_RUN, WAITING_TO_PUBLISH}
        assert (WAITING_TO_RUN in err) != (WAITING_TO_RUN in caplog.text)
        assert "rows read" in out

        runs = query(url, "SELECT status, count(*) FROM audit.runs GROUP BY status")
        assert runs == [("succeeded", 2)]
        # Published once: the scenario's quarter exactly, and each table's rows once.
        q1 = SCENARIO_QUARTERS["2024-Q1"]
        assert query(
            url,
            "SELECT period_label, inference_spend_usd, revshare_paid_usd, revshare_received_usd"
            " FROM marts.quarterly_summary",
        ) == [("2024-Q1", q1.inference_spend_usd, q1.revshare_paid_usd, q1.revshare_received_usd)]
        loaded, published = query(
            url,
            "SELECT (SELECT sum(billed_cost_usd) FROM audit.billing_control_totals"
            "        WHERE run_id = %s),"
            " (SELECT sum(billed_cost_usd) FROM marts.inference_spend_daily)",
            (outcome["result"].run_id,),
        )[0]
        assert loaded == published
        dupes = query(
            url,
            "SELECT count(*) - count(DISTINCT (usage_date, provider, service_name, region, sku,"
            " workload)) FROM marts.inference_spend_daily",
        )
        assert dupes == [(0,)]
        assert accounting_balances(url) == []
