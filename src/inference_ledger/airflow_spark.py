"""LedgerSparkSubmitOperator: the apache-spark provider's `SparkSubmitOperator` running one
`jobs/<job>.py` of the ledger run that the DAG's `prepare` task recorded.

Imported by the DAG files (the provider is light: no Spark at import). The Spark master, deploy
mode and binary come from the connection `spark_default`, read by the provider's
`SparkSubmitHook`; the connection's `conf` extra (e.g. the lake's s3a settings) is added to the
job's Spark properties. The run's arguments come from `prepare`'s XCom at run time, so nothing
about a run (nor any secret: the jobs read the database URL from their environment) is in the
DAG file.

Exit codes of the jobs (jobs/_args.py): 2 bad input and 3 a failed quality gate fail the task
without retries (`AirflowFailException`); any other failure is left to the task's retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from inference_ledger import orchestration


class LedgerSparkSubmitOperator(SparkSubmitOperator):
    """`spark-submit jobs/<job>.py --run-id … --landing … [--start/--end/--as-of] <job_args>`."""

    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        job: str,
        job_args: Sequence[str] = (),
        run_task_id: str = "prepare",
        conn_id: str = orchestration.SPARK_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=conn_id, name=f"inference-ledger:{job}", **kwargs)
        self.job = job
        self.job_args = list(job_args)
        self.run_task_id = run_task_id

    def execute(self, context: Any) -> None:
        with orchestration.airflow_errors():
            run = context["ti"].xcom_pull(task_ids=self.run_task_id)
            if not run:
                raise orchestration.ParamError(f"no ledger run from task {self.run_task_id!r}")
            target = orchestration.spark_connection(self._conn_id)
            self.application = str(orchestration.jobs_dir() / f"{self.job}.py")
            self.application_args = orchestration.job_arguments(run, self.job_args)
            self.name = f"inference-ledger:{self.job}:{run['run_id']}"
            self.conf = {**orchestration.spark_conf(target), **(self.conf or {})}
            self.env_vars = {**orchestration.job_environment(target), **(self.env_vars or {})}
            self._hook = None  # built from the values above
            try:
                super().execute(context)
            except Exception as exc:
                code = self._returncode()
                if code in orchestration.DATA_ERROR_EXIT_CODES:
                    kind = orchestration.DATA_ERROR_EXIT_CODES[code]
                    raise orchestration.DataError(
                        f"{self.job} job: {kind} (exit {code}): {self._job_message()}"
                    ) from exc
                raise

    def _returncode(self) -> int | None:
        proc = getattr(self._hook, "_submit_sp", None)
        return proc.returncode if proc is not None else None

    def _job_message(self) -> str:
        # The job's own message (jobs/_args.py) if it printed one, else its last line.
        lines = [str(line) for line in getattr(self._hook, "_last_submit_log_lines", ())]
        mine = [t for t in lines if t.startswith("ledger job:")]
        return mine[-1] if mine else next((t for t in reversed(lines) if t.strip()), "")
