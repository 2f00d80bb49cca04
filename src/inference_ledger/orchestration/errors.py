"""How a task fails: data errors at once (no retry), anything else left to Airflow's retries;
every failure's message kept for the run's `finish` task."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from inference_ledger.orchestration.wiring import ERROR_XCOM_KEY, MAX_ERROR_CHARS

log = logging.getLogger(__name__)


class ParamError(ValueError):
    """A DAG param or data interval that cannot make a partition (retrying will not help)."""


class DataError(RuntimeError):
    """A Spark job exited with a data-error code (bad input, failed quality gate)."""


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
