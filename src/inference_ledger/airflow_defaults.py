"""What the ledger's DAG files share: default task arguments and the run-range params.

Parse-time light (only `airflow.sdk`): the DAG processor imports it with every DAG file.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param

OWNER = "finance-data-eng"


def default_args(*, execution_timeout: timedelta, retry_delay: timedelta | None = None) -> dict:
    """Transient failures (a database restart, a lost executor) retry twice with backoff."""
    return {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": retry_delay or timedelta(minutes=5),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(hours=1),
        "execution_timeout": execution_timeout,
    }


def run_params(*, as_of: bool = False) -> dict[str, Param]:
    """`landing`, `start`, `end` (and `as_of`): empty means the schedule decides."""
    params = {
        "landing": Param(
            None,
            type=["null", "string"],
            description="Landing folder or object-store URL (abfs://<container>/<path>,"
            " s3://<bucket>/<prefix>); empty = $LEDGER_LANDING, else $LEDGER_HOME/landing.",
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
    }
    if as_of:
        params["as_of"] = Param(
            None,
            type=["null", "string"],
            format="date",
            description="Date statuses are judged at; empty = data interval end.",
        )
    return params
