"""What the DAGs, their tasks and the Spark jobs agree on: the XCom passed between tasks, the
tasks that make a run, the assets, the Spark connection and pool, the jobs' exit codes."""

from __future__ import annotations

from typing import Any

# The XCom of the `prepare` task: run id, landing folder, partition and as-of date (ISO strings).
RunInfo = dict[str, Any]

# The tasks whose success means the ledger run did its work; `report` only reads the marts.
PUBLISHING_TASKS = ("prepare", "ingest", "announce", "aggregate", "publish", "close")
OPTIONAL_TASKS = ("report",)
ERROR_XCOM_KEY = "error"
MAX_ERROR_CHARS = 2000

# What the ingest DAGs produce and ledger_nightly is scheduled on. One asset per source; the
# URIs name the lake tables each source feeds (finance feeds several small tables).
ASSET_URIS = {
    "billing": "ledger://lake/billing_lines",
    "usage": "ledger://lake/usage_facts",
    "finance": "ledger://lake/finance_feeds",
}
# The Airflow connection of the Spark master, and the pool that serialises lake writers.
SPARK_CONN_ID = "spark_default"
LAKE_POOL = "ledger_lake"
# spark-submit exit codes of the jobs (jobs/_args.py) that retrying will not fix.
DATA_ERROR_EXIT_CODES = {2: "InputError", 3: "QualityGateFailed"}
# The billing ingest DAG's sensor (inference_ledger.airflow_sensors): when it found no new
# export run, nothing was ingested and there is no ledger run to close.
WAIT_FOR_EXPORT_TASK = "wait_for_export_run"
