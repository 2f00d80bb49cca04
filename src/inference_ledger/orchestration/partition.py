"""The partition a DAG run covers, and the dates it is judged at: from the params, the data
interval, the triggering asset events or the manual run's day."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from inference_ledger.orchestration.errors import ParamError
from inference_ledger.periods import Quarter
from inference_ledger.settings import load_settings

log = logging.getLogger(__name__)


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
