"""ledger_nightly: the same steps as `ledger run`, one Airflow task each. Wiring only.

The task bodies are in `inference_ledger.orchestration` (a light module: no Spark, Great
Expectations, files or database at import), so parsing this file costs next to nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import (
    CronDataIntervalTimetable,
    Param,
    TriggerRule,
    dag,
    get_current_context,
    task,
)

from inference_ledger import orchestration

DOC_MD = """
### ledger_nightly

Runs the Inference Ledger pipeline for one **partition**, the same steps as
`ledger run --landing DIR --start START --end END`:

`prepare` → `ingest` → `aggregate` → `publish` → `report` → `finish`

| task | does |
|---|---|
| prepare | migrates the DB, records the run in `audit.runs`; XCom: run id, landing, partition |
| ingest | landing → lake (Spark), per-file accounting and quarantine in `audit` |
| aggregate | lake → the four marts of the partition's quarters (Spark) |
| publish | stage → Great Expectations gate → publish in one transaction |
| report | HTML + CSV report of every quarter published (`$LEDGER_HOME/reports`) |
| finish | `all_done`: marks the run succeeded / failed in `audit.runs`; fails if any task did |

**Partition.** Scheduled nightly at 02:00 UTC with a *data interval* timetable: the run for
day D has the interval [D 02:00, D+1 02:00) and its partition is
`[data_interval_start.date(), data_interval_end.date())` = the day D. The library widens a
partition to whole calendar quarters, so each night re-publishes the quarter containing D
(idempotently: same inputs, same marts). Params `start` / `end` (ISO dates, `end`
exclusive) override either side. A manual run without a logical date has no data interval:
its partition is "yesterday" (the UTC day before it was triggered). Reconciliation statuses
are judged as of `as_of`, default the end of the data interval (else the trigger date).

**Landing.** Param `landing`, default `$LEDGER_LANDING`, else `$LEDGER_HOME/landing`
(resolved on the worker). Settings come from the worker's environment (`LEDGER_HOME`,
`LEDGER_DATABASE_URL`, `LEDGER_SPARK_MASTER`); each task process starts its own Spark session.

**Failures.** Transient errors retry (2 retries, exponential backoff). Bad input
(`InputError`), a failed data-quality gate (`QualityGateFailed`) and bad params fail at once,
without retries. A failed run leaves the published marts as they were; `audit.runs.error`
names the failed task and its error. If only `report` fails, the ledger run stays
`succeeded` (its marts were published) but the DAG run fails.
"""

DEFAULT_ARGS = {
    "owner": "finance-data-eng",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(hours=1),
    "execution_timeout": timedelta(hours=3),
}

PARAMS = {
    "landing": Param(
        None,
        type=["null", "string"],
        description="Landing folder; empty = $LEDGER_LANDING, else $LEDGER_HOME/landing.",
    ),
    "start": Param(
        None,
        type=["null", "string"],
        format="date",
        description="First day (inclusive, YYYY-MM-DD); empty = data interval start.",
    ),
    "end": Param(
        None,
        type=["null", "string"],
        format="date",
        description="Last day (exclusive, YYYY-MM-DD); empty = data interval end.",
    ),
    "as_of": Param(
        None,
        type=["null", "string"],
        format="date",
        description="Date statuses are judged at; empty = data interval end.",
    ),
}


@dag(
    dag_id="ledger_nightly",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["inference-ledger", "finance", "nightly"],
    doc_md=DOC_MD,
)
def ledger_nightly():
    @task
    def prepare(params=None, data_interval_start=None, data_interval_end=None, dag_run=None):
        with orchestration.airflow_errors():
            start, end = orchestration.partition(
                start=params["start"],
                end=params["end"],
                interval_start=data_interval_start,
                interval_end=data_interval_end,
                run_after=dag_run.run_after,
            )
            as_of = orchestration.as_of_date(params["as_of"], data_interval_end, dag_run.run_after)
            return orchestration.prepare(
                landing=params["landing"],
                start=start,
                end=end,
                as_of=as_of,
                command=f"airflow:{dag_run.dag_id}/{dag_run.run_id}",
            )

    @task
    def ingest(run: dict):
        with orchestration.airflow_errors():
            return orchestration.ingest(run)

    @task
    def aggregate(run: dict):
        with orchestration.airflow_errors():
            return orchestration.aggregate(run)

    @task
    def publish(run: dict):
        with orchestration.airflow_errors():
            return orchestration.publish(run)

    @task
    def report(run: dict, aggregated: dict):
        with orchestration.airflow_errors():
            return orchestration.report(run, aggregated)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def finish():
        orchestration.finish_from_airflow(get_current_context())

    run = prepare()
    ingested = ingest(run)
    aggregated = aggregate(run)
    published = publish(run)
    reported = report(run, aggregated)
    ingested >> aggregated >> published >> reported >> finish()


ledger_nightly()
