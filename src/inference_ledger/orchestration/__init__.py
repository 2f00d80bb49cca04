"""What the tasks of the Airflow DAGs in dags/ do.

The DAG files are wiring only; the task bodies live here, next to the library they call, so the
DAG processor parses the DAGs without touching Spark, Great Expectations, files or the
database. Importing this module is cheap (stdlib and `inference_ledger.periods`/`settings`
only): everything heavy is imported inside the functions, which run in the worker.

The DAGs (see docs/deploy.md):

- `ledger_ingest_billing`, `ledger_ingest_usage`, `ledger_ingest_finance`: their own source of
  the landing folder -> lake (`spark-submit jobs/ingest.py --sources <source>`), each emitting
  its `Asset` (`ASSET_URIS`) with the run's partition in the event's `extra`.
- `ledger_nightly`: on those assets or at 03:00 UTC: `spark-submit jobs/aggregate.py`
  (aggregate + reconcile), then in the worker, without Spark, `publish_run` (stage -> audit ->
  publish) and the report.
- `ledger_quarterly_close`: freezes the quarter that just ended (`close_period`).

Tasks pass one small JSON dict between them (`RunInfo`, the XCom of `prepare`): the ledger run
id, the landing folder and the run's partition as ISO strings. Every task rebuilds what it needs
from it and its own environment; the database URL (which may carry a password) never goes
through XCom nor onto a command line. The Spark steps are the apache-spark provider's
SparkSubmitOperator (`inference_ledger.airflow_spark`), at the master of the connection
`spark_default`; this module gives them their arguments (`job_arguments`, `spark_conf`).
"""

from inference_ledger.orchestration.alerts import deadline_missed
from inference_ledger.orchestration.errors import DataError, ParamError, airflow_errors
from inference_ledger.orchestration.partition import (
    as_of_date,
    asset_range,
    default_landing,
    manual_logical_date,
    partition,
    quarter_to_close,
    triggering_extras,
)
from inference_ledger.orchestration.spark_submit import (
    SparkTarget,
    job_arguments,
    job_environment,
    jobs_dir,
    spark_conf,
    spark_connection,
    spark_submit_command,
    spark_submit_env,
    spark_target,
)
from inference_ledger.orchestration.tasks import (
    close,
    finish,
    finish_from_airflow,
    ingest_job_args,
    ingest_summary,
    ledger_run,
    prepare,
    prepare_dag_run,
    publish_run,
    report,
)
from inference_ledger.orchestration.wiring import (
    ASSET_URIS,
    DATA_ERROR_EXIT_CODES,
    ERROR_XCOM_KEY,
    LAKE_POOL,
    MAX_ERROR_CHARS,
    OPTIONAL_TASKS,
    PUBLISHING_TASKS,
    SPARK_CONN_ID,
    WAIT_FOR_EXPORT_TASK,
    RunInfo,
)

__all__ = [
    "ASSET_URIS",
    "DATA_ERROR_EXIT_CODES",
    "DataError",
    "ERROR_XCOM_KEY",
    "LAKE_POOL",
    "MAX_ERROR_CHARS",
    "OPTIONAL_TASKS",
    "PUBLISHING_TASKS",
    "ParamError",
    "RunInfo",
    "SPARK_CONN_ID",
    "SparkTarget",
    "WAIT_FOR_EXPORT_TASK",
    "airflow_errors",
    "as_of_date",
    "asset_range",
    "close",
    "deadline_missed",
    "default_landing",
    "finish",
    "finish_from_airflow",
    "ingest_job_args",
    "ingest_summary",
    "job_arguments",
    "job_environment",
    "jobs_dir",
    "manual_logical_date",
    "partition",
    "prepare",
    "prepare_dag_run",
    "publish_run",
    "quarter_to_close",
    "report",
    "ledger_run",
    "spark_conf",
    "spark_connection",
    "spark_submit_command",
    "spark_submit_env",
    "spark_target",
    "triggering_extras",
]
