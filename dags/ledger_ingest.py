"""ledger_ingest_billing, ledger_ingest_usage, ledger_ingest_finance: landing -> lake, one DAG
per source, each producing its Asset. Wiring only: the task bodies are in
`inference_ledger.orchestration`, the Spark work in `spark-submit jobs/ingest.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import (
    Asset,
    CronDataIntervalTimetable,
    TriggerRule,
    dag,
    get_current_context,
    task,
)

from inference_ledger import airflow_defaults, orchestration
from inference_ledger.airflow_sensors import ExportRunSensor
from inference_ledger.airflow_spark import LedgerSparkSubmitOperator

# source -> (when its deliveries are in, what it feeds)
SOURCES = {
    "billing": ("0 1 * * *", "cloud billing exports (billing/azure, billing/focus)"),
    "usage": ("10 1 * * *", "usage-API pages (usage/<channel>/<day>)"),
    "finance": (
        "20 1 * * *",
        "finance feeds (finance/fx, prices, contracts, revenue, settlements)",
    ),
}

DEFAULT_ARGS = airflow_defaults.default_args(execution_timeout=timedelta(hours=2))
PARAMS = airflow_defaults.run_params()

DOC_MD = """
### {dag_id}

Ingests the landing folder into the lake for **{source}**: {what}. Scheduled daily at
`{cron}` UTC (data-interval timetable); on success it updates the asset
`{uri}`, on which `ledger_nightly` is scheduled. The asset event's `extra` carries the
ledger run id, the partition (`start`, `end`: the data interval's days, or the params) and the
row counts, so the nightly run it triggers publishes the quarters of that partition.

{wait}`prepare` (records the ledger run in `audit.runs`) → `ingest` (SparkSubmitOperator:
`spark-submit jobs/ingest.py --sources {source}` at the `spark_default` connection's master,
in pool `{pool}` so lake writers never overlap) → `announce` (the asset event, with the
run's counts from `audit.input_files`) → `finish` (closes the ledger run; fails the DAG run
if a task failed).

Each DAG reads only its own part of the landing folder ({what}); the billing DAG also
reads the FX rates, which billing amounts convert with. See docs/deploy.md.

**Failures.** Transient errors retry (2 retries, exponential backoff). Bad input (exit code 2 of
the job, `InputError`) fails at once, without retries, and is recorded in `audit.runs`.
"""


WAIT_DOC = """`wait_for_export_run` (when the landing is an `abfs://` or `s3://` URL: a
complete export run -- a Cost Management manifest and every blob it lists, or an AWS Data
Exports manifest and every data file it lists -- that arrived since the last sync; the
connection `wasb_default` or `aws_default`; skipped after 20 hours without one, and so no asset
event) → """


def ingest_dag(source: str, cron: str, what: str):
    dag_id = f"ledger_ingest_{source}"
    asset = Asset(name=f"ledger_{source}", uri=orchestration.ASSET_URIS[source])

    @dag(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable(cron, timezone="UTC"),
        start_date=datetime(2024, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        params=PARAMS,
        tags=["inference-ledger", "ingest", source],
        doc_md=DOC_MD.format(
            dag_id=dag_id,
            source=source,
            what=what,
            cron=cron,
            uri=asset.uri,
            pool=orchestration.LAKE_POOL,
            wait=WAIT_DOC if source == "billing" else "",
        ),
    )
    def ingest_source():
        @task
        def prepare(params=None, data_interval_start=None, data_interval_end=None, dag_run=None):
            with orchestration.airflow_errors():
                return orchestration.prepare_dag_run(
                    params, data_interval_start, data_interval_end, dag_run
                )

        @task(outlets=[asset])
        def announce(run: dict, outlet_events=None):
            with orchestration.airflow_errors():
                summary = orchestration.ingest_summary(run)
            outlet_events[asset].extra.update({"source": source, **summary})
            return summary

        @task(trigger_rule=TriggerRule.ALL_DONE)
        def finish():
            orchestration.finish_from_airflow(get_current_context())

        run = prepare()
        if source == "billing":
            # An object-store landing: wait (deferred, in the triggerer) for a complete export
            # run; none in 20 h: skipped, no asset event. A local landing passes at once.
            (
                ExportRunSensor(
                    task_id=orchestration.WAIT_FOR_EXPORT_TASK,
                    landing="{{ params.landing or '' }}",
                    wasb_conn_id="wasb_default",
                    aws_conn_id="aws_default",
                    poke_interval=600,
                    timeout=20 * 3600,
                    soft_fail=True,
                )
                >> run
            )
        ingest = LedgerSparkSubmitOperator(
            task_id="ingest",
            job="ingest",
            job_args=orchestration.ingest_job_args(source),
            pool=orchestration.LAKE_POOL,
        )
        run >> ingest >> announce(run) >> finish()

    return ingest_source()


for _source, (_cron, _what) in SOURCES.items():
    ingest_dag(_source, _cron, _what)
