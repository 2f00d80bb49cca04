"""The `ledger run` the Spark-cluster, Airflow backfill and DAG tests compare with: a generated
2024-Q1 landing run once per test run (the `cli_baseline` session fixture), as of its end, in a
LEDGER_HOME and database of its own on the session's embedded server."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy.engine import make_url

# The run both the cluster test and the Airflow tests compare with: 2024-Q1, as of its end.
PERIOD = (date(2024, 1, 1), date(2024, 4, 1))
PERIOD_ARGS = ["--start", "2024-01-01", "--end", "2024-04-01", "--as-of", "2024-04-01"]

# Each mart's date column: the rows of a period are those with this column in [start, end).
MART_DATES = {
    "inference_spend_daily": "usage_date",
    "unit_cost_monthly": "usage_month",
    "revshare_reconciliation": "period_start",
    "quarterly_summary": "period_start",
}


def mart_digests(url: str, start: date, end: date) -> dict[str, tuple[int, str]]:
    """Per mart: (row count, md5 of its rows in [start, end) as text, in order)."""
    from inference_ledger.db import connect

    conn = connect(url)
    try:
        out = {}
        with conn.cursor() as cur:
            for mart, column in MART_DATES.items():
                cur.execute(
                    f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
                    f" FROM marts.{mart} t WHERE {column} >= %s AND {column} < %s",
                    (start, end),
                )
                count, digest = cur.fetchone()
                out[mart] = (count, digest)
        conn.commit()
        return out
    finally:
        conn.close()


def database_on(pg_url: str, name: str) -> str:
    """A fresh, empty database `name` on the server of `pg_url`; returns its URL."""
    from inference_ledger.db import connect

    conn = connect(pg_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return make_url(pg_url).set(database=name).render_as_string(hide_password=False)


def make_cli_baseline(pg_url: str, root: Path) -> tuple[Path, str]:
    """`ledger run --landing LANDING --start 2024-01-01 --end 2024-04-01 --as-of 2024-04-01`
    on a generated 2024-Q1 landing, in `root/home` and the database `ledger_baseline`; the
    command runs in this process (on the session's Spark) with its home and database URL set
    through the environment, as the CLI reads them. Returns (landing, database URL)."""
    from inference_ledger import cli
    from inference_ledger.sample import generate_landing
    from inference_ledger.spark import get_spark, set_codegen
    from tests.reliability_support import current_ledger, environment

    landing = root / "landing"
    generate_landing(landing, start="2024-Q1", end="2024-Q1", scale=0.2)
    url = database_on(pg_url, "ledger_baseline")
    # Compiled (LEDGER_SPARK_CODEGEN=on): every run compared with this one (the DAGs', the
    # backfill's, the cluster's) reads a small landing and runs interpreted, so their equal
    # marts also show that both of Spark's evaluators give the same figures.
    with current_ledger(root / "home", url), environment(LEDGER_SPARK_CODEGEN="on"):
        assert cli.main(["run", "--landing", str(landing), *PERIOD_ARGS]) == 0
    set_codegen(get_spark(), False)  # the test session's own (conftest.py)
    return landing, url
