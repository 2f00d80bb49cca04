"""What each task of the Airflow DAG `ledger_nightly` (dags/ledger_nightly.py) does.

The DAG file is wiring only; the task bodies live here, next to the library they call, so the
DAG processor parses the DAG without touching Spark, Great Expectations, files or the database.
Importing this module is cheap (stdlib and `inference_ledger.periods`/`settings` only):
everything heavy is imported inside the functions, which run in the worker.

Tasks pass one small JSON dict between them (`RunInfo`, the XCom of `prepare`): the ledger run
id, the landing folder and the run's partition as ISO strings. Every task rebuilds its
`steps.RunContext` and database URL from it and its own environment; the URL (which may carry
a password) never goes through XCom. Each Airflow task runs in its own process in production,
so each creates its own Spark session; under `dag.test()` they share one.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from inference_ledger.periods import quarters_between
from inference_ledger.settings import load_settings

log = logging.getLogger(__name__)

RunInfo = dict[str, Any]

# The tasks whose success means the marts were published; `report` only reads them.
PUBLISHING_TASKS = ("prepare", "ingest", "aggregate", "publish")
ERROR_XCOM_KEY = "error"
MAX_ERROR_CHARS = 2000


# ---------------------------------------------------------------- partition of a run


class ParamError(ValueError):
    """A DAG param or data interval that cannot make a partition (retrying will not help)."""


def default_landing() -> Path:
    """The landing folder when the DAG param is empty: $LEDGER_LANDING, else
    $LEDGER_HOME/landing (read on the worker, not at parse time)."""
    configured = os.environ.get("LEDGER_LANDING")
    return Path(configured) if configured else load_settings().landing_dir


def _utc_date(value: datetime) -> date:
    return value.astimezone(UTC).date() if value.tzinfo else value.date()


def _param_date(name: str, value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise ParamError(f"param {name}={value!r} is not a date (YYYY-MM-DD)") from exc


def partition(
    *,
    start: Any = None,
    end: Any = None,
    interval_start: datetime | None = None,
    interval_end: datetime | None = None,
    run_after: datetime | None = None,
) -> tuple[date, date]:
    """The run's partition [start, end) (dates; end exclusive).

    - `start` / `end` params, when given, win (each independently).
    - Otherwise the data interval: [data_interval_start.date(), data_interval_end.date()) in
      UTC, at least one day. A scheduled run of "0 2 * * *" for day D has the interval
      [D 02:00, D+1 02:00), so its partition is the day D.
    - A manual run without a data interval (Airflow 3 lets logical_date be None) falls back to
      "yesterday": the UTC day before the run was triggered (`run_after`, else now).

    The library widens the partition to whole calendar quarters when it aggregates, so a
    nightly run re-publishes the quarter containing D.
    """
    p_start, p_end = _param_date("start", start), _param_date("end", end)
    if interval_start is not None and interval_end is not None:
        d_start = _utc_date(interval_start)
        d_end = max(_utc_date(interval_end), d_start + timedelta(days=1))
    else:
        today = _utc_date(run_after or datetime.now(UTC))
        d_start, d_end = today - timedelta(days=1), today
    first, last = p_start or d_start, p_end or d_end
    if first >= last:
        raise ParamError(f"empty partition: start {first} is not before end {last} (exclusive)")
    return first, last


def as_of_date(
    as_of: Any = None, interval_end: datetime | None = None, run_after: datetime | None = None
) -> date:
    """The date reconciliation statuses are judged at: the param, else the end of the data
    interval (so re-running an old interval gives the same marts), else the trigger date."""
    explicit = _param_date("as_of", as_of)
    if explicit:
        return explicit
    if interval_end is not None:
        return _utc_date(interval_end)
    return _utc_date(run_after or datetime.now(UTC))


# ---------------------------------------------------------------- errors


@contextlib.contextmanager
def airflow_errors() -> Iterator[None]:
    """Data errors fail the task at once; anything else is left to Airflow's retries.

    Bad input (`InputError`), a failed data-quality gate (`QualityGateFailed`) and bad params
    (`ParamError`) do not get better by retrying, so they become `AirflowFailException` (no
    retry). Every failure's message is also pushed as XCom `error`, for `finish` to record in
    audit.runs (Airflow clears a task's XComs when it starts again: this is the last try's).
    """
    from airflow.sdk.exceptions import AirflowFailException

    from inference_ledger.ingest.records import InputError
    from inference_ledger.quality import QualityGateFailed

    try:
        yield
    except AirflowFailException as exc:
        _push_error(exc)
        raise
    except (InputError, QualityGateFailed, ParamError) as exc:
        _push_error(exc)
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
    except BaseException as exc:  # also Airflow's task timeout, a BaseException
        _push_error(exc)
        raise


def _push_error(exc: BaseException) -> None:
    from airflow.sdk import get_current_context

    text = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    try:
        get_current_context()["ti"].xcom_push(ERROR_XCOM_KEY, text)
    except Exception:  # never hide the task's own error behind a reporting problem
        log.warning("could not push the error of this task to XCom", exc_info=True)


# ---------------------------------------------------------------- the tasks


def _date_or_none(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def run_context(run: RunInfo):
    """The `steps.RunContext` of a run, rebuilt in this process from the XCom dict."""
    from inference_ledger import steps

    return steps.RunContext(
        run_id=run["run_id"],
        landing=Path(run["landing"]),
        start=_date_or_none(run["start"]),
        end=_date_or_none(run["end"]),
        as_of=date.fromisoformat(run["as_of"]),
    )


def _url(ctx) -> str:
    from inference_ledger.db import database_url

    return database_url(ctx.settings)


def _spark(task: str):
    from inference_ledger.spark import get_spark

    # The name sticks to the session a task process creates first (one per task in production).
    return get_spark(f"inference-ledger:{task}")


def prepare(
    *,
    landing: str | None,
    start: date,
    end: date,
    as_of: date,
    command: str,
) -> RunInfo:
    """Migrate the database, record the run as running; returns the XCom for the other tasks."""
    from inference_ledger import pipeline

    folder = Path(landing) if landing else default_landing()
    ctx, _ = pipeline.prepare(folder, start, end, command, as_of=as_of)
    run = {
        "run_id": ctx.run_id,
        "landing": str(ctx.landing),
        "start": ctx.start.isoformat() if ctx.start else None,
        "end": ctx.end.isoformat() if ctx.end else None,
        "as_of": ctx.as_of.isoformat(),
    }
    log.info("ledger run %s: partition [%s, %s), as of %s", ctx.run_id, start, end, as_of)
    return run


def ingest(run: RunInfo) -> dict[str, int]:
    """Landing -> lake, with per-file accounting and the quarantine recorded in `audit`."""
    from inference_ledger import pipeline

    ctx = run_context(run)
    _spark("ingest")
    accounting = pipeline.ingest_step(ctx, _url(ctx))
    keys = ("rows_read", "rows_loaded", "rows_quarantined", "rows_superseded", "rows_deduplicated")
    totals = {k: sum(int(r[k]) for r in accounting) for k in keys}
    return {"files": len(accounting), **totals}


def aggregate(run: RunInfo) -> dict[str, Any]:
    """Lake -> the four marts of the run's quarters (under the run, not yet published)."""
    from inference_ledger import pipeline, steps

    ctx = run_context(run)
    spark = _spark("aggregate")
    counts = pipeline.aggregate_step(ctx, _url(ctx))
    start, end = steps.run_range(spark, ctx)
    return {"start": start.isoformat(), "end": end.isoformat(), "rows": counts}


def publish(run: RunInfo) -> dict[str, Any]:
    """Stage, audit (Great Expectations), publish in one transaction."""
    from inference_ledger import pipeline

    ctx = run_context(run)
    _spark("publish")
    outcome = pipeline.publish_step(ctx, _url(ctx))
    return {"rows": outcome.rows, "checks": outcome.checks, "warnings": outcome.warnings}


def report(run: RunInfo, aggregated: Mapping[str, Any]) -> list[str]:
    """Period reports (HTML + CSV, from the marts) for every quarter the run published."""
    from inference_ledger.db import connect
    from inference_ledger.report import write_period_report

    ctx = run_context(run)
    labels = [
        q.label
        for q in quarters_between(
            date.fromisoformat(aggregated["start"]), date.fromisoformat(aggregated["end"])
        )
    ]
    conn = connect(_url(ctx))
    try:
        return [str(write_period_report(conn, p, ctx.settings.reports_dir)) for p in labels]
    finally:
        conn.close()


def finish(run: RunInfo | None, states: Mapping[str, str], errors: Mapping[str, str]) -> None:
    """Close the run in audit.runs from the final states of the DAG run's other tasks.

    `states` maps task id -> final state, `errors` task id -> the error it pushed. The ledger
    run succeeded when prepare, ingest, aggregate and publish did (the marts are published);
    it failed otherwise, with the failed tasks and their errors. Any task not successful
    (report included) then fails this task, so the DAG run fails too.
    """
    from airflow.sdk.exceptions import AirflowFailException

    not_ok = {t: s for t, s in sorted(states.items()) if s != "success"}
    if run is None:
        raise AirflowFailException(f"no ledger run was recorded (prepare did not finish): {not_ok}")
    from inference_ledger import pipeline

    ctx = run_context(run)
    failed = [t for t in PUBLISHING_TASKS if t in not_ok]
    if failed:
        error = "; ".join(
            f"{t} {not_ok[t]}" + (f": {errors[t]}" if errors.get(t) else "") for t in failed
        )
        pipeline.finish(ctx, _url(ctx), error=f"airflow: {error}"[:MAX_ERROR_CHARS])
        log.error("ledger run %s failed: %s", ctx.run_id, error)
    else:
        pipeline.finish(ctx, _url(ctx))
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
