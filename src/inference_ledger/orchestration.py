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
  (aggregate + reconcile), `spark-submit jobs/publish.py` (stage -> audit -> publish), report.
- `ledger_quarterly_close`: freezes the quarter that just ended (`close_period`).

Tasks pass one small JSON dict between them (`RunInfo`, the XCom of `prepare`): the ledger run
id, the landing folder and the run's partition as ISO strings. Every task rebuilds what it needs
from it and its own environment; the database URL (which may carry a password) never goes
through XCom nor onto a command line. The Spark steps are the apache-spark provider's
SparkSubmitOperator (`inference_ledger.airflow_spark`), at the master of the connection
`spark_default`; this module gives them their arguments (`job_arguments`, `spark_conf`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from inference_ledger.periods import Quarter, quarters_between
from inference_ledger.settings import DEFAULT_SPARK_MASTER, load_settings

log = logging.getLogger(__name__)

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


# ---------------------------------------------------------------- partition of a run


class ParamError(ValueError):
    """A DAG param or data interval that cannot make a partition (retrying will not help)."""


class DataError(RuntimeError):
    """A Spark job exited with a data-error code (bad input, failed quality gate)."""


def default_landing() -> Path:
    """The landing folder when the DAG param is empty: $LEDGER_LANDING (a folder, or an object
    store URL synced into a local mirror), else $LEDGER_HOME/landing (read on the worker, not
    at parse time)."""
    from inference_ledger.ingest.remote import local_landing

    settings = load_settings()
    return (
        local_landing(settings.landing, settings.home) if settings.landing else settings.landing_dir
    )


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


def asset_range(extras: Iterable[Mapping[str, Any] | None]) -> tuple[date, date] | None:
    """The union [min start, max end) of the partitions that triggering asset events carry in
    their `extra` (`{"start": ISO date, "end": ISO date}`, as the ingest DAGs emit them);
    None when no event carries one."""
    starts, ends = [], []
    for extra in extras:
        if not extra or not extra.get("start") or not extra.get("end"):
            continue
        starts.append(_param_date("asset event start", extra["start"]))
        ends.append(_param_date("asset event end", extra["end"]))
    return (min(starts), max(ends)) if starts else None


def partition(
    *,
    start: Any = None,
    end: Any = None,
    interval_start: datetime | None = None,
    interval_end: datetime | None = None,
    run_after: datetime | None = None,
    asset_extras: Iterable[Mapping[str, Any] | None] = (),
    logical_date: datetime | None = None,
) -> tuple[date, date]:
    """The run's partition [start, end) (dates; end exclusive).

    - `start` / `end` params, when given, win (each independently).
    - Otherwise the data interval: [data_interval_start.date(), data_interval_end.date()) in
      UTC, at least one day. A scheduled run of "0 2 * * *" for day D has the interval
      [D 02:00, D+1 02:00), so its partition is the day D. Backfill runs have one too.
    - An asset-triggered run (Airflow 3: no logical date, no data interval) covers the
      partitions its triggering asset events carry (`asset_range`).
    - A manual run with a logical date (`manual_logical_date`, e.g. `airflow dags test DAG D`)
      covers its own day [D, D+1): Airflow would otherwise infer the last complete interval
      *before* D, so `dags test ledger_nightly 2024-03-31` ran 2024-03-29..30.
    - A manual run without a data interval falls back to "yesterday": the UTC day before the
      run was triggered (`run_after`, else now).

    The library widens the partition to whole calendar quarters when it aggregates, so a
    nightly run re-publishes the quarter containing D.
    """
    p_start, p_end = _param_date("start", start), _param_date("end", end)
    from_events = asset_range(asset_extras)
    if logical_date is not None:
        d_start = _utc_date(logical_date)
        d_end = d_start + timedelta(days=1)
    elif interval_start is not None and interval_end is not None:
        d_start = _utc_date(interval_start)
        d_end = max(_utc_date(interval_end), d_start + timedelta(days=1))
    elif from_events is not None:
        d_start, d_end = from_events
    else:
        today = _utc_date(run_after or datetime.now(UTC))
        d_start, d_end = today - timedelta(days=1), today
    first, last = p_start or d_start, p_end or d_end
    if first >= last:
        raise ParamError(f"empty partition: start {first} is not before end {last} (exclusive)")
    return first, last


def manual_logical_date(dag_run: Any) -> datetime | None:
    """The logical date of a manual run (`airflow dags test`, UI trigger), else None.

    Scheduled, backfill and asset runs keep their data interval; a manual run's logical date
    can be None too (then `partition` keeps its fallback).
    """
    run_type = str(getattr(dag_run, "run_type", "") or "").lower()
    return getattr(dag_run, "logical_date", None) if run_type.endswith("manual") else None


def as_of_date(
    as_of: Any = None,
    interval_end: datetime | None = None,
    run_after: datetime | None = None,
    logical_date: datetime | None = None,
) -> date:
    """The date reconciliation statuses are judged at: the param, else the end of the run's
    day for a manual run dated D (D+1, the end of the partition `partition` gives it), else
    the end of the data interval (so re-running an old interval gives the same marts), else
    the trigger date."""
    explicit = _param_date("as_of", as_of)
    if explicit:
        return explicit
    if logical_date is not None:
        return _utc_date(logical_date) + timedelta(days=1)
    if interval_end is not None:
        return _utc_date(interval_end)
    return _utc_date(run_after or datetime.now(UTC))


def quarter_to_close(
    period: Any = None, interval_end: datetime | None = None, run_after: datetime | None = None
) -> str:
    """The quarter a close run freezes: the `period` param (`2024-Q1`), else the quarter that
    ended before the end of the data interval (scheduled and backfill runs), else before the
    trigger date (manual runs, where Airflow 3 has no logical date)."""
    if period not in (None, ""):
        try:
            return Quarter.parse(str(period)).label
        except ValueError as exc:
            raise ParamError(str(exc)) from exc
    reference = _utc_date(interval_end or run_after or datetime.now(UTC))
    return Quarter.of(Quarter.of(reference).start - timedelta(days=1)).label


def triggering_extras(triggering_asset_events: Mapping[Any, Iterable[Any]] | None) -> list:
    """The `extra` dicts of a run's triggering asset events (empty for a time-based run)."""
    if not triggering_asset_events:
        return []
    return [
        dict(getattr(event, "extra", None) or {})
        for events in triggering_asset_events.values()
        for event in events
    ]


# ---------------------------------------------------------------- errors


@contextlib.contextmanager
def airflow_errors() -> Iterator[None]:
    """Data errors fail the task at once; anything else is left to Airflow's retries.

    Bad input (`InputError`), a failed data-quality gate (`QualityGateFailed`), a Spark job that
    exited with one of their codes (`DataError`) and bad params (`ParamError`) do not get better
    by retrying, so they become `AirflowFailException` (no retry). Every failure's message is
    also pushed as XCom `error`, for `finish` to record in audit.runs (Airflow clears a task's
    XComs when it starts again: this is the last try's).
    """
    from airflow.sdk.exceptions import AirflowFailException

    from inference_ledger.ingest.records import InputError
    from inference_ledger.quality import QualityGateFailed

    try:
        yield
    except AirflowFailException as exc:
        _push_error(exc)
        raise
    except (InputError, QualityGateFailed, ParamError, DataError) as exc:
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


# ---------------------------------------------------------------- Spark through spark-submit


@dataclass(frozen=True)
class SparkTarget:
    """Where and how `spark-submit` runs a job: from the `spark_default` connection."""

    master: str = DEFAULT_SPARK_MASTER
    deploy_mode: str | None = None
    binary: str | None = None  # None: the spark-submit next to this interpreter, else on PATH
    conf: Mapping[str, str] = field(default_factory=dict)


def spark_target(connection: Any | None = None) -> SparkTarget:
    """A `SparkTarget` from an Airflow connection (or None: `$LEDGER_SPARK_MASTER`, else
    local[*]).

    The connection is read the way the apache-spark provider's SparkSubmitHook reads it:
    a URI connection `spark://spark-master:7077` has conn_type `spark`, host `spark-master`
    and port 7077, giving master `spark://spark-master:7077`; a connection whose host holds a
    full master (`local[*]`, `yarn`, `k8s://https://…`) is used as is (plus `:port` if any).
    Extras: `deploy-mode`, `spark-binary` (a name on PATH or an absolute path) and `conf`
    (a JSON object of Spark properties, e.g. the s3a settings of the lake).
    """
    if connection is None:
        return SparkTarget(master=load_settings().spark_master)
    host = (getattr(connection, "host", None) or "").strip()
    conn_type = (getattr(connection, "conn_type", None) or "spark").strip()
    port = getattr(connection, "port", None)
    if conn_type == "spark" and host and ("://" in host or not port):
        master = host
    elif host:
        master = f"{conn_type}://{host}"
    else:
        master = load_settings().spark_master
    if port:
        master = f"{master}:{port}"
    extra = _extra(connection)
    conf = extra.get("conf") or {}
    if isinstance(conf, str):
        conf = json.loads(conf)
    return SparkTarget(
        master=master,
        deploy_mode=extra.get("deploy-mode") or None,
        binary=extra.get("spark-binary") or None,
        conf={str(k): str(v) for k, v in conf.items()},
    )


def _extra(connection: Any) -> dict:
    extra = getattr(connection, "extra_dejson", None)
    if extra is not None:
        return dict(extra)
    raw = getattr(connection, "extra", None)
    return json.loads(raw) if raw else {}


def spark_connection(conn_id: str = SPARK_CONN_ID) -> SparkTarget:
    """The `SparkTarget` of the Airflow connection `conn_id`; when it is not defined, the
    worker's `$LEDGER_SPARK_MASTER`, else local[*]. Read at run time, in the worker."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = Connection.get(conn_id)
    except AirflowNotFoundException:
        log.info("no Airflow connection %r: Spark master from the environment", conn_id)
        connection = None
    return spark_target(connection)


def jobs_dir() -> Path:
    """The folder of the spark-submit entry points: $LEDGER_JOBS_DIR, else the repository's
    jobs/ (this package installed in development mode from the repository)."""
    folder = load_settings().jobs_dir or Path(__file__).resolve().parents[2] / "jobs"
    if not (folder / "_args.py").is_file():
        raise FileNotFoundError(
            f"no Spark jobs in {folder}: set LEDGER_JOBS_DIR to the jobs/ folder"
        )
    return folder


def _spark_submit_binary(target: SparkTarget) -> str:
    if target.binary:
        return target.binary
    beside = Path(sys.executable).parent / "spark-submit"
    return str(beside) if beside.exists() else "spark-submit"


def spark_conf(target: SparkTarget) -> dict[str, str]:
    """The Spark properties every job runs with: the driver's log4j config and memory, then
    the connection's `conf` extra (which may override them)."""
    from importlib.resources import files

    log4j = files("inference_ledger") / "config" / "log4j2.properties"
    return {
        "spark.driver.extraJavaOptions": f"-Dlog4j.configurationFile={log4j}",
        "spark.driver.memory": load_settings().spark_driver_memory,
        **target.conf,
    }


def job_arguments(run: RunInfo, job_args: Iterable[str] = ()) -> list[str]:
    """A job's arguments for one run (jobs/_args.py). No secret: the jobs read the database
    URL and the lake location from their environment."""
    args = ["--run-id", run["run_id"], "--landing", run["landing"]]
    for flag, key in (("--start", "start"), ("--end", "end"), ("--as-of", "as_of")):
        if run.get(key):
            args += [flag, run[key]]
    return [*args, *job_args]


def spark_submit_command(
    job: str,
    run: RunInfo,
    target: SparkTarget,
    jobs: Path | None = None,
    job_args: Iterable[str] = (),
) -> list[str]:
    """The `spark-submit` command line of one job of a run, as SparkSubmitOperator builds it
    in the DAGs; for running the jobs outside Airflow (the cluster test, a shell)."""
    cmd = [_spark_submit_binary(target), "--master", target.master]
    if target.deploy_mode:
        cmd += ["--deploy-mode", target.deploy_mode]
    cmd += ["--name", f"inference-ledger:{job}:{run['run_id']}"]
    for key, value in spark_conf(target).items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, str((jobs or jobs_dir()) / f"{job}.py"), *job_arguments(run, job_args)]


def spark_submit_env(target: SparkTarget) -> dict[str, str]:
    """The job's environment: the worker's own (LEDGER_*, credentials), with the driver and
    executors on this interpreter unless configured, and the master the job records."""
    env = dict(os.environ)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    env["LEDGER_SPARK_MASTER"] = target.master
    return env


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


def _url(ctx=None) -> str:
    from inference_ledger.db import database_url

    return database_url(ctx.settings if ctx is not None else None)


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
    from inference_ledger import steps
    from inference_ledger.db import database_url
    from inference_ledger.run import RunStore

    settings = load_settings()
    url = database_url(settings)
    from inference_ledger.ingest.remote import local_landing

    folder = local_landing(landing, settings.home) if landing else default_landing()
    run_id = steps.new_run_id()
    master = spark_connection().master
    RunStore(url, run_id, str(settings.lake_dir)).open(
        command, str(folder.resolve()), master, start, end, as_of
    )
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
    from inference_ledger.db import connect

    conn = connect(_url())
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*), coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0),"
                " coalesce(sum(rows_quarantined), 0) FROM audit.input_files WHERE run_id = %s",
                (run["run_id"],),
            )
            files, read, loaded, quarantined = cur.fetchone()
        conn.commit()
    finally:
        conn.close()
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


def published_range(run: RunInfo) -> tuple[date, date]:
    """The quarters the run aggregated, as `aggregate` recorded them in audit.runs."""
    from inference_ledger.db import connect

    conn = connect(_url())
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT period_start, period_end FROM audit.runs WHERE run_id = %s",
                (run["run_id"],),
            )
            row = cur.fetchone()
        conn.commit()
    finally:
        conn.close()
    if not row or row[0] is None:
        raise RuntimeError(f"ledger run {run['run_id']} has no period in audit.runs")
    return row[0], row[1]


def report(run: RunInfo) -> list[str]:
    """Period reports (HTML + CSV, from the marts) for every quarter the run published."""
    from inference_ledger.db import connect
    from inference_ledger.report import write_period_report

    start, end = published_range(run)
    labels = [q.label for q in quarters_between(start, end)]
    conn = connect(_url())
    try:
        reports_dir = load_settings().reports_dir
        return [str(write_period_report(conn, p, reports_dir)) for p in labels]
    finally:
        conn.close()


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
    from inference_ledger.db import connect

    names = ("param accept_exceptions", "param reason")
    try:  # an empty reason param is no reason
        why = signoff_reason(bool(accept_exceptions), reason or None, names)
    except ValueError as exc:
        raise ParamError(str(exc)) from exc
    conn = connect(_url())
    try:
        status = period_status(conn, period)
        conn.commit()
    finally:
        conn.close()
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


# The billing ingest DAG's sensor (inference_ledger.airflow_sensors): when it found no new
# export run, nothing was ingested and there is no ledger run to close.
WAIT_FOR_EXPORT_TASK = "wait_for_export_run"


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
    from inference_ledger import pipeline

    ctx = run_context(run)
    order = {t: i for i, t in enumerate(PUBLISHING_TASKS)}
    failed = sorted(
        (t for t in not_ok if t not in OPTIONAL_TASKS), key=lambda t: (order.get(t, 99), t)
    )
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


# ---------------------------------------------------------------- deadline alert


async def deadline_missed(context: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
    """DeadlineAlert callback (runs in the triggerer): the nightly run is late.

    Logs an error naming the DAG run; when `$LEDGER_ALERT_WEBHOOK_URL` is set (from the
    deployment's .env, never in code), also POSTs a JSON message to it (Slack/Teams style
    incoming webhook: `{"text": ...}`).
    """
    import asyncio

    ctx = dict(context or {})
    dag_run = ctx.get("dag_run") or {}
    ident = (
        dag_run.get("run_id") if isinstance(dag_run, Mapping) else getattr(dag_run, "run_id", None)
    )
    text = (
        f"inference-ledger: {kwargs.get('what', 'a DAG run')} missed its deadline ({ident or ctx})"
    )
    log.error("%s", text)
    url = load_settings().alert_webhook_url
    if url:
        await asyncio.to_thread(_post_json, url, {"text": text})


def _post_json(url: str, body: Mapping[str, Any]) -> None:
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (configured URL)
        response.read()
