"""What the tasks of the DAGs do: open the run, summarise its ingest, publish its marts, write
its reports, close a quarter, finish the run from the other tasks' final states."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from inference_ledger.orchestration.errors import ParamError
from inference_ledger.orchestration.partition import (
    as_of_date,
    default_landing,
    manual_logical_date,
    partition,
    triggering_extras,
)
from inference_ledger.orchestration.spark_submit import spark_connection
from inference_ledger.orchestration.wiring import (
    ERROR_XCOM_KEY,
    MAX_ERROR_CHARS,
    OPTIONAL_TASKS,
    PUBLISHING_TASKS,
    WAIT_FOR_EXPORT_TASK,
    RunInfo,
)
from inference_ledger.settings import load_settings

log = logging.getLogger(__name__)


def _date_or_none(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def ledger_run(run: RunInfo):
    """The run (run/runner.py `Run`) a task works on, rebuilt in this process from the XCom."""
    from inference_ledger.db import database_url
    from inference_ledger.run.context import RunContext
    from inference_ledger.run.runner import Run

    ctx = RunContext(
        run_id=run["run_id"],
        landing=Path(run["landing"]),
        start=_date_or_none(run["start"]),
        end=_date_or_none(run["end"]),
        as_of=date.fromisoformat(run["as_of"]),
    )
    return Run(ctx, database_url(ctx.settings))


def _url() -> str:
    from inference_ledger.db import database_url

    return database_url()


def prepare_dag_run(
    params: Mapping[str, Any],
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    dag_run: Any,
    triggering_asset_events: Any = None,
) -> RunInfo:
    """The `prepare` task of the ingest and nightly DAGs: the run's partition (params, else the
    triggering asset events' partitions, else the data interval, else a manual run's day) and
    as-of date resolved once, then `prepare`."""
    logical = manual_logical_date(dag_run)
    start, end = partition(
        start=params.get("start"),
        end=params.get("end"),
        interval_start=data_interval_start,
        interval_end=data_interval_end,
        run_after=dag_run.run_after,
        logical_date=logical,
        asset_extras=triggering_extras(triggering_asset_events),
    )
    as_of = as_of_date(
        params.get("as_of"), data_interval_end, dag_run.run_after, logical_date=logical
    )
    return prepare(
        landing=params.get("landing"),
        start=start,
        end=end,
        as_of=as_of,
        command=f"airflow:{dag_run.dag_id}/{dag_run.run_id}",
    )


def prepare(
    *,
    landing: str | None,
    start: date,
    end: date,
    as_of: date,
    command: str,
) -> RunInfo:
    """Record the run as running (the run store migrates the database first); returns the
    XCom for the other tasks. Light: no Spark (the Spark work is in the spark-submit jobs)."""
    from inference_ledger.db import database_url
    from inference_ledger.run import RunStore
    from inference_ledger.run.context import new_run_id

    settings = load_settings()
    url = database_url(settings)
    from inference_ledger.ingest.remote import local_landing

    folder = local_landing(landing, settings.home) if landing else default_landing()
    run_id = new_run_id()
    master = spark_connection().master
    RunStore(url, run_id).open(command, str(folder.resolve()), master, start, end, as_of)
    run = {
        "run_id": run_id,
        "landing": str(folder.resolve()),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "as_of": as_of.isoformat(),
    }
    log.info("ledger run %s: partition [%s, %s), as of %s", run_id, start, end, as_of)
    return run


def ingest_summary(run: RunInfo) -> dict[str, Any]:
    """What the run's ingest job recorded in audit.input_files, with its partition: the
    `extra` of the ingest DAGs' asset events, from which ledger_nightly takes its partition."""
    from inference_ledger.db import connection

    with connection(_url()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0),"
            " coalesce(sum(rows_quarantined), 0) FROM audit.input_files WHERE run_id = %s",
            (run["run_id"],),
        )
        files, read, loaded, quarantined = cur.fetchone()
    return {
        "run_id": run["run_id"],
        "start": run["start"],
        "end": run["end"],
        "files": int(files),
        "rows_read": int(read),
        "rows_loaded": int(loaded),
        "rows_quarantined": int(quarantined),
    }


def ingest_job_args(source: str) -> list[str]:
    """The ingest job's arguments in the ingest DAG of `source`: only that source, and a
    failure (after the other months are in the lake) when billing months could not be
    loaded, e.g. for a missing FX rate, since the nightly run publishes under its own run id
    and would not see them."""
    return ["--sources", source, "--fail-on-failed-months"]


def publish_run(run: RunInfo) -> dict[str, int]:
    """The nightly publish, in the worker: the run's marts (Parquet under the run, written by
    its aggregate job) -> staging (COPY) -> the staging gate -> one publishing transaction. No
    Spark session: the run's state comes from the run store (the database). The run stays
    open; the DAG's `finish` task records how it ended."""
    from inference_ledger.steps.publish import PublishStep

    outcome = PublishStep().run(ledger_run(run))
    done = {
        "rows": sum(outcome.rows.values()),
        "checks": outcome.checks,
        "warnings": outcome.warnings,
    }
    log.info("published %(rows)d mart rows; %(checks)d checks, %(warnings)d warnings", done)
    return done


def report(run: RunInfo) -> list[str]:
    """Period reports (HTML + CSV, from the marts) for every quarter the run published, at the
    range its aggregate recorded in audit.runs."""
    from inference_ledger.steps.report import ReportStep

    return [str(p) for p in ReportStep().run(ledger_run(run))]


def close(period: str, closed_by: str, accept_exceptions: Any = False, reason: Any = None) -> str:
    """Freeze `period` (`close_period`, whose rule decides what blocks a close); a period
    already closed (and not reopened) is left as it is (the run succeeds with its existing
    checksum). A period with no published figures, or with exceptions nobody accepted (params
    `accept_exceptions` and `reason`), fails at once with close's own message."""
    from airflow.sdk.exceptions import AirflowFailException

    from inference_ledger.close import (
        CloseRefused,
        blocker_summary,
        close_period,
        period_status,
        signoff_reason,
    )
    from inference_ledger.db import connection

    names = ("param accept_exceptions", "param reason")
    try:  # an empty reason param is no reason
        why = signoff_reason(bool(accept_exceptions), reason or None, names)
    except ValueError as exc:
        raise ParamError(str(exc)) from exc
    with connection(_url()) as conn:
        status = period_status(conn, period)
    if status and status["closed"]:
        log.info("period %s is already closed (snapshot %s)", period, status["snapshot_sha256"])
        return status["snapshot_sha256"]
    try:
        closed = close_period(
            period, closed_by=closed_by, accept_exceptions=bool(accept_exceptions), reason=why
        )
    except CloseRefused as exc:  # a sign-off is missing: retrying will not give it
        raise AirflowFailException(str(exc)) from exc
    except ValueError as exc:  # no published figures: closing again will not help
        raise ParamError(str(exc)) from exc
    log.info("closed %s: snapshot sha256 %s", period, closed.snapshot_sha256)
    if closed.accepted:
        log.warning("%s signed off %s accepting %s: %s", closed_by, period,
                    blocker_summary(closed.accepted), why)  # fmt: skip
    return closed.snapshot_sha256


def finish(run: RunInfo | None, states: Mapping[str, str], errors: Mapping[str, str]) -> None:
    """Close the run in audit.runs from the final states of the DAG run's other tasks.

    `states` maps task id -> final state, `errors` task id -> the error it pushed. The ledger
    run succeeded when every task but `report` did (the lake or the marts were written); it
    failed otherwise, with the failed tasks and their errors. Any task not successful
    (report included) then fails this task, so the DAG run fails too.
    """
    from airflow.sdk.exceptions import AirflowFailException

    not_ok = {t: s for t, s in sorted(states.items()) if s != "success"}
    if run is None and states.get(WAIT_FOR_EXPORT_TASK) == "skipped":
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("no new export run arrived: nothing was ingested")
    if run is None:
        raise AirflowFailException(f"no ledger run was recorded (prepare did not finish): {not_ok}")
    ledger = ledger_run(run)
    ctx = ledger.ctx
    order = {t: i for i, t in enumerate(PUBLISHING_TASKS)}
    failed = sorted(
        (t for t in not_ok if t not in OPTIONAL_TASKS), key=lambda t: (order.get(t, 99), t)
    )
    if failed:
        error = "; ".join(
            f"{t} {not_ok[t]}" + (f": {errors[t]}" if errors.get(t) else "") for t in failed
        )
        ledger.store.finish(error=f"airflow: {error}"[:MAX_ERROR_CHARS])
        log.error("ledger run %s failed: %s", ctx.run_id, error)
    else:
        ledger.store.finish()
        log.info("ledger run %s succeeded", ctx.run_id)
    if not_ok:
        detail = ", ".join(f"{t}={s}" for t, s in not_ok.items())
        status = "failed" if failed else "succeeded (marts published)"
        raise AirflowFailException(f"ledger run {ctx.run_id} {status}; tasks not ok: {detail}")


def finish_from_airflow(context: Mapping[str, Any]) -> None:
    """`finish` with the states and errors of the current DAG run's other tasks."""
    ti = context["ti"]
    run = ti.xcom_pull(task_ids="prepare", default=None)
    states = dict(ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {}))
    states.pop(ti.task_id, None)
    errors = {
        t: ti.xcom_pull(task_ids=t, key=ERROR_XCOM_KEY, default=None)
        for t, s in states.items()
        if s != "success"
    }
    finish(run, {t: str(getattr(s, "value", s)) for t, s in states.items()}, errors)
