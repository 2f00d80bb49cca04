"""The audit behind a quarter (marts.period_status, period_quarantine, period_data_quality
and the report's audit sections) through real runs: a generated quarter with billing faults
(rows quarantined, an export run rejected), then a rerun that reads nothing new. The audit is
that of the inputs the figures rest on, so the rerun leaves it as it was."""

from __future__ import annotations

import csv
import secrets
from datetime import date
from decimal import Decimal

import pytest
from psycopg2 import sql

from inference_ledger.db import connect, migrate
from inference_ledger.pipeline import run_pipeline
from inference_ledger.report import write_period_report
from inference_ledger.sample import generate_landing
from tests.reliability_support import current_ledger

pytestmark = pytest.mark.slow
AS_OF = date(2024, 5, 15)


@pytest.fixture(scope="module")
def audit_env(spark, pg_url, tmp_path_factory):
    """Its own database and LEDGER_HOME: the quarter published here meets no other test."""
    from sqlalchemy.engine import make_url

    name = f"period_audit_{secrets.token_hex(4)}"
    admin = connect(pg_url)
    admin.autocommit = True
    admin.cursor().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    with current_ledger(tmp_path_factory.mktemp("audit_home"), url):
        yield url
    admin.cursor().execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


@pytest.fixture(scope="module")
def conn(audit_env):
    c = connect(audit_env)
    yield c
    c.close()


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults_landing")
    generate_landing(out, start="2024-Q1", end="2024-Q1", scale=0.1, billing_faults=True)
    return out


@pytest.fixture(scope="module")
def runs(audit_env, landing):
    return run_pipeline(landing, as_of=AS_OF)


def _audit_seen(conn, out) -> dict:
    """What a reviewer sees of the audit behind 2024-Q1: the page's data-quality and inputs
    sections, quarantine.csv, input_files.csv and the period's row of marts.period_status."""
    page = write_period_report(conn, "2024-Q1", out).read_text()
    seen = {}
    for section_id in ("data-quality", "inputs"):
        start = page.index(f'<section id="{section_id}">')
        seen[section_id] = page[start : page.index("</section>", start)]
    for name in ("quarantine.csv", "input_files.csv"):
        seen[name] = (out / "2024-Q1" / name).read_text()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT period_label, is_closed, as_of, months_final, dq_checks, dq_warnings,"
            " dq_critical_failed, quarantined_rows, quarantined_amount_by_currency::text"
            " FROM marts.period_status ORDER BY 1"
        )
        seen["period_status"] = cur.fetchall()
    conn.commit()
    return seen


def test_quarantine_of_the_period_in_rows_and_dollars(runs, conn):
    with conn.cursor() as cur:
        cur.execute(
            "SELECT source, reason, currency, sum(row_count), sum(amount)"
            " FROM marts.period_quarantine WHERE period_label = '2024-Q1'"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
        by_reason = cur.fetchall()
        cur.execute(
            "SELECT sum(rows_quarantined) FROM audit.input_files WHERE run_id = %s",
            (runs.run_id,),
        )
        (quarantined_by_run,) = cur.fetchone()
    conn.commit()
    assert by_reason == BY_REASON
    # Every row the run quarantined belongs to 2024-Q1 and is counted there once.
    assert sum(r[3] for r in by_reason) == quarantined_by_run
    # The dollars at stake are those of the rejected run's file, summed from the raw CSV.
    with conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT path FROM marts.period_quarantine WHERE reason = %s", (REJECTED,)
        )
        paths = [r[0] for r in cur.fetchall()]
    conn.commit()
    assert len(paths) == 1
    with open(paths[0], newline="", encoding="utf-8-sig") as f:
        raw = sum(Decimal(r["CostInBillingCurrency"]) for r in csv.DictReader(f))
    assert raw == BY_REASON[1][4]


def test_a_rerun_that_reads_nothing_new_leaves_the_period_audit_as_it_was(
    runs, conn, landing, tmp_path
):
    before = _audit_seen(conn, tmp_path / "before")
    again = run_pipeline(landing, as_of=AS_OF)
    assert (again.rows_read, again.rows_quarantined) == (0, 0)
    after = _audit_seen(conn, tmp_path / "after")
    assert after == before
    assert before["period_status"] == PERIOD_STATUS
    with conn.cursor() as cur:
        cur.execute(
            "SELECT published_by_run_id, count(*), count(*) FILTER (WHERE read_by_run_id = %s)"
            " FROM audit.period_inputs GROUP BY 1",
            (again.run_id,),
        )
        published_by, files, read_by_rerun = cur.fetchone()
        cur.execute("SELECT published_by_run_id, as_of FROM marts.period_status")
        assert cur.fetchall() == [(again.run_id, AS_OF)]
    conn.commit()
    assert (published_by, read_by_rerun) == (again.run_id, 0) and files > 0


REJECTED = "export run rejected: part_0_0001.csv: manifest says 94 data rows, file has 93"
BY_REASON = [
    ("billing.azure", "BilledCost / CostInBillingCurrency is not a decimal number", "USD",
     Decimal(2), None),
    ("billing.azure", REJECTED, "USD", Decimal(93), Decimal("331433080.9300000000")),
]  # fmt: skip
# 2024-Q1 as of 2024-05-15: open, its three months final, 141 checks (85 before the unit
# margin, commitment and outlook marts' suites) of which one warning (the share of quarantined
# billing rows), 95 rows quarantined with $331,433,080.93 at stake.
PERIOD_STATUS = [
    ("2024-Q1", False, AS_OF, 3, 141, 1, 0, 95, '{"USD": 331433080.9300000000}'),
]
