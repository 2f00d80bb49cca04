"""ledger_quarterly_close: freeze the quarter that just ended (`close_period`). Wiring only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from inference_ledger import airflow_defaults, orchestration

DOC_MD = """
### ledger_quarterly_close

Closes the calendar quarter that just ended: `inference_ledger.close.close_period` snapshots its
published `quarterly_summary` and `revshare_reconciliation` rows with a SHA-256 checksum in
`audit.closed_periods`. From then on nightly runs do not republish it; late changes become
prior-period adjustments in the open quarter.

**When.** At 06:00 UTC on the 20th day after each quarter ends (Jan/Apr/Jul/Oct 20), which
leaves time for the last settlements and billing restatements. The run with data interval
[Jan 20, Apr 20) closes the quarter before the one containing the interval's end: 2024-Q1.
A manual run (no logical date in Airflow 3) closes the quarter before the one it was
triggered in; param `period` (`2024-Q1`) closes a given quarter instead.

**Sign-off.** Closing is a sign-off: a quarter with open reconciliation exceptions
(`marts.reconciliation_exceptions`) or failed critical data-quality results
(`marts.period_data_quality`) fails the task at once (no retry) with a message listing them.
Trigger it again with params `accept_exceptions: true` and `reason` to close it anyway: what
was accepted, the reason, who (`airflow:<dag>/<run>`) and when are recorded in
`audit.closed_periods` and `audit.period_close_events`.

**Failures.** Transient errors (database unreachable) retry. A quarter with no published
figures, or with exceptions nobody accepted, fails at once; a quarter already closed (by the
CLI or an earlier run) is left as it is and the run succeeds.
"""

DEFAULT_ARGS = airflow_defaults.default_args(
    execution_timeout=timedelta(minutes=30), retry_delay=timedelta(minutes=10)
)


@dag(
    dag_id="ledger_quarterly_close",
    schedule=CronDataIntervalTimetable("0 6 20 1,4,7,10 *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "period": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-Q[1-4]$",
            description="Quarter to close (2024-Q1); empty = the quarter that just ended.",
        ),
        "accept_exceptions": Param(
            False,
            type="boolean",
            description="Sign off a quarter with open reconciliation exceptions or failed"
            " critical data-quality checks: close it anyway, recording what was accepted"
            " (needs reason).",
        ),
        "reason": Param(
            None,
            type=["null", "string"],
            description="With accept_exceptions: why they are accepted (kept in audit).",
        ),
    },
    tags=["inference-ledger", "finance", "close"],
    doc_md=DOC_MD,
)
def ledger_quarterly_close():
    @task
    def close(params=None, data_interval_end=None, dag_run=None):
        with orchestration.airflow_errors():
            period = orchestration.quarter_to_close(
                params["period"], data_interval_end, dag_run.run_after
            )
            digest = orchestration.close(
                period,
                closed_by=f"airflow:{dag_run.dag_id}/{dag_run.run_id}",
                accept_exceptions=params["accept_exceptions"],
                reason=params["reason"],
            )
            return {"period": period, "snapshot_sha256": digest}

    close()


ledger_quarterly_close()
