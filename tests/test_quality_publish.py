"""The staging gate through the real publish step: run outputs computed by the real transforms
from tiny hand-built lake rows, COPY into staging, the GX suites, then publish or not.

One batch publishes with its warnings recorded; then each critical staging check gets a batch
violating it (and only it), and the publish fails naming it while the marts stay as they were.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from psycopg2 import sql
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from inference_ledger import audit, lake
from inference_ledger.db import connect, migrate
from inference_ledger.quality import QualityGateFailed
from inference_ledger.run.context import RunContext, new_run_id
from inference_ledger.run.runner import Run
from inference_ledger.settings import load_settings
from inference_ledger.steps.aggregate_marts import control_totals
from inference_ledger.steps.publish import PublishStep
from inference_ledger.transform import commitment, margin, outlook, reconcile, spend, summary
from tests.helpers import lake_df, revenue, statement, term
from tests.reliability_support import current_ledger
from tests.test_pipeline_e2e import marts_hash
from tests.test_quality_lake import bill, use
from tests.test_transform_commitment import commitment as commitment_row

D = Decimal
START, END, AS_OF = date(2024, 1, 1), date(2024, 4, 1), date(2024, 12, 31)


@pytest.fixture(scope="module")
def quality_env(spark, pg_url, tmp_path_factory):
    """Its own database on the session's server and its own LEDGER_HOME (lake, Data Docs), so
    what these tests publish or put in the lake never meets another test's data."""
    from sqlalchemy.engine import make_url

    name = f"quality_{secrets.token_hex(4)}"
    admin = connect(pg_url)
    admin.autocommit = True
    admin.cursor().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    with current_ledger(tmp_path_factory.mktemp("quality_home"), url):
        yield url
    admin.cursor().execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


@pytest.fixture
def conn(quality_env):
    c = connect(quality_env)
    yield c
    c.close()


@pytest.fixture(scope="module")
def batch(spark) -> Iterator[dict[str, DataFrame]]:
    """The run outputs of a good quarter. Amounts use all 10 decimal places, so a variance
    computed at Spark's default decimal(38,9) would be off and the arithmetic check would say so."""
    billing = lake_df(
        spark,
        "billing_lines",
        [
            bill(usage_date=date(2024, 1, 1), billed_cost_usd=D("10.0000000001")),
            bill(usage_date=date(2024, 1, 1), workload="training", billed_cost_usd=D("5")),
            bill(usage_date=date(2024, 1, 2), billed_cost_usd=D("12")),
            # A day-over-day jump beyond the configured factor 3: a warning.
            bill(usage_date=date(2024, 1, 3), billed_cost_usd=D("100")),
        ],
    )
    usage = lake_df(spark, "usage_facts", [use("p1", usage_date=date(2024, 1, 2))])
    terms = lake_df(
        spark,
        "contract_terms",
        [
            term("paid", "payable", "revenue:api", "0.2", "2024-01-01"),
            term("recv", "receivable", "revenue:chatgpt_consumer", "0.2", "2024-01-01"),
        ],
    )
    revenue_lines = lake_df(
        spark,
        "revenue_lines",
        [
            revenue("r1", "2024-01-05", "api", "100.0000000005"),
            revenue("r2", "2024-01-05", "chatgpt_consumer", "1000"),
        ],
    )
    settlements = lake_df(
        spark,
        "settlements",
        [
            statement("s1", "paid", "payable", "2024-01-01", "2024-04-01", "20.0000000002"),
            # 150 settled against 200 expected: underpaid, a warning that still publishes.
            statement("s2", "recv", "receivable", "2024-01-01", "2024-04-01", "150"),
        ],
    )
    periods = reconcile.periods_frame(spark, START, END)
    daily = spend.inference_spend_daily(billing)
    rec = reconcile.revshare_reconciliation(terms, revenue_lines, settlements, periods, AS_OF)
    unit = spend.unit_cost_monthly(usage, billing)
    history = outlook.metric_history(periods, billing, rec)
    out = {
        "quarterly_forecast": outlook.quarterly_forecast(history, terms, START, END),
        "cap_projection": outlook.cap_projection(rec, terms, START, END),
        "inference_spend_daily": daily,
        "unit_cost_monthly": unit,
        "unit_margin_monthly": margin.unit_margin_monthly(
            unit, spend.usage_weights(usage), revenue_lines, settlements, terms
        ),
        "revenue": margin.first_party_revenue(revenue_lines, margin.MarginRule.load()),
        "commitment_burndown": commitment.commitment_burndown(
            lake_df(
                spark, "commitments", [commitment_row("C", "100", "2024-01-01", "2024-07-01", "*")]
            ),
            billing,
            START,
            END,
        ),
        "revshare_reconciliation": rec,
        "quarterly_summary": summary.quarterly_summary(periods, daily, rec),
        "billing": billing,
    }
    frames = {k: v.cache() for k, v in out.items()}
    yield frames
    _forget_written(frames)


def publish_batch(spark, pg_url, batch, tamper=None):
    """Write the batch as a run's outputs (after `tamper`), then the real publish step."""
    settings = load_settings()
    ctx = RunContext(run_id=new_run_id(), landing=settings.home, settings=settings, as_of=AS_OF)
    conn = connect(pg_url)
    try:
        audit.start_run(conn, ctx.run_id, "test", None, "local", START, END)
    finally:
        conn.close()
    _write_outputs(spark, ctx, batch, tamper)
    run = Run(ctx, pg_url)
    # What the run's aggregate records for its publish step.
    run.store.record_aggregate(START, END, [])
    try:
        outcome = PublishStep().run(run)
    except BaseException as exc:
        run.store.finish(error=f"{type(exc).__name__}: {exc}")
        raise
    run.store.finish()
    return ctx, outcome


# (batch, folder): a batch's untampered run outputs, written by Spark once and copied into each
# later run; a tampered run writes again only the frames its tamper replaced.
_WRITTEN: list[tuple[dict, Path]] = []


def _write_outputs(spark, ctx, batch, tamper) -> None:
    run_dir = Path(lake.run_path(ctx.lake_dir, ctx.run_id, ""))
    frames = {k: v for k, v in batch.items() if k not in ("billing", "revenue")}
    written = next((folder for b, folder in _WRITTEN if b is batch), None)
    if written is None:
        control_totals(ctx, batch["billing"], batch["revenue"])
        for name, df in frames.items():
            lake.write_run_output(df, ctx.lake_dir, ctx.run_id, f"marts/{name}")
        written = Path(tempfile.mkdtemp(prefix="good-batch-"))
        shutil.copytree(run_dir, written, dirs_exist_ok=True)
        _WRITTEN.append((batch, written))
    else:
        shutil.copytree(written, run_dir)
    if tamper:
        for name, df in tamper(dict(frames), ctx).items():
            if df is not frames[name]:
                lake.write_run_output(df, ctx.lake_dir, ctx.run_id, f"marts/{name}")


def _forget_written(batch: dict) -> None:
    """Remove the batch's written copy once its module is done (it lives outside basetemp)."""
    for entry in [e for e in _WRITTEN if e[0] is batch]:
        _WRITTEN.remove(entry)
        shutil.rmtree(entry[1], ignore_errors=True)


def failed_checks(conn, run_id: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT suite, check_name, severity, observed_value FROM audit.dq_results"
            " WHERE run_id = %s AND NOT success ORDER BY 1, 2, 3, 4",
            (run_id,),
        )
        rows = cur.fetchall()
    conn.commit()
    return rows


@pytest.fixture(scope="module")
def published(spark, quality_env, batch):
    return publish_batch(spark, quality_env, batch)


def test_warnings_publish_and_are_recorded(published, conn):
    ctx, outcome = published
    assert outcome.warnings == 2
    assert failed_checks(conn, ctx.run_id) == [
        ("staging.inference_spend_daily", "spend_jump", "warning", "1"),
        ("staging.revshare_reconciliation", "settlement_status", "warning", "1"),
    ]
    with conn.cursor() as cur:
        cur.execute(
            "SELECT agreement_id, expected_usd, settled_usd, variance_usd, status"
            " FROM marts.revshare_reconciliation WHERE period_label = '2024-Q1' ORDER BY 1"
        )
        assert cur.fetchall() == [
            ("paid", D("20.0000000001"), D("20.0000000002"), D("0.0000000001"), "matched"),
            ("recv", D("200.0000000000"), D("150.0000000000"), D("-50.0000000000"), "underpaid"),
        ]
        cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE checked_at IS NOT NULL"
            " AND check_name IS NOT NULL) FROM audit.dq_results WHERE run_id = %s",
            (ctx.run_id,),
        )
        total, complete = cur.fetchone()
    assert total == outcome.checks and total == complete and total > 40
    docs = ctx.settings.home / "data_docs" / ctx.run_id / "index.html"
    assert "staging.revshare_reconciliation" in docs.read_text()


def test_only_suites_with_a_failure_are_validated_again_with_counts(published, conn):
    """The staging suites run BOOLEAN_ONLY (a pass is 0 unexpected rows: nothing to count); the
    two with a warning run again in SUMMARY, so each of their column checks keeps its count."""
    ctx, _ = published
    with conn.cursor() as cur:
        cur.execute(
            "SELECT suite, expectation, success, observed_value, details->>'unexpected_count'"
            " FROM audit.dq_results WHERE run_id = %s",
            (ctx.run_id,),
        )
        rows = cur.fetchall()
    conn.commit()
    again = {"staging.inference_spend_daily", "staging.revshare_reconciliation"}
    assert {r[0] for r in rows if not r[2]} == again
    counted = {(r[0], r[4] is not None) for r in rows if r[1] != "unexpected_rows_expectation"}
    assert counted == {(s, True) for s in again} | {
        (s, False) for s in {r[0] for r in rows} - again
    }
    assert {r[3] for r in rows if r[0] not in again} == {"0"}


MONEY = "decimal(38,10)"


def money(column: str):
    return F.col(column).cast("decimal(24,10)")  # keeps the 10th place in a subtraction


def _with(frames, name, df):
    return {**frames, name: df}


def dup_unit_cost(frames, ctx):
    df = frames["unit_cost_monthly"]
    return _with(frames, "unit_cost_monthly", df.unionByName(df))


def null_fiscal_label(frames, ctx):
    df = frames["quarterly_summary"].withColumn("fiscal_period_label", F.lit(None).cast("string"))
    return _with(frames, "quarterly_summary", df)


def lake_total_a_cent_more(frames, ctx, table="inference_spend_daily"):
    path = lake.run_path(ctx.lake_dir, ctx.run_id, "control_totals")
    spark = frames["unit_cost_monthly"].sparkSession
    totals = spark.read.parquet(path)
    tampered = totals.withColumn(
        "amount",
        F.when(F.col("table_name") == table, money("amount") + F.lit(D("0.01")))
        .otherwise(money("amount"))
        .cast("decimal(38,10)"),
    )
    lake.write_run_output(tampered.localCheckpoint(), ctx.lake_dir, ctx.run_id, "control_totals")
    return frames


def lake_revenue_a_cent_more(frames, ctx):
    return lake_total_a_cent_more(frames, ctx, "unit_margin_monthly")


def _margin_moved(frames, column, amount, margin_too=True):
    # Operands narrowed (money()): decimal(38,10) + a literal would round to 9 places.
    df = frames["unit_margin_monthly"].withColumn(
        column, (money(column) + F.lit(D(amount))).cast(MONEY)
    )
    if margin_too:  # keep margin = revenue - cost - paid, so only the tie-out breaks
        df = df.withColumn("margin_usd", (money("margin_usd") - F.lit(D(amount))).cast(MONEY))
    return _with(frames, "unit_margin_monthly", df)


def margin_cost_a_cent_more(frames, ctx):
    return _margin_moved(frames, "inference_cost_usd", "0.01")


def margin_paid_a_cent_more(frames, ctx):
    return _margin_moved(frames, "revshare_paid_usd", "0.01")


def margin_off_by_last_place(frames, ctx):
    return _margin_moved(frames, "margin_usd", "0.0000000001", margin_too=False)


def summary_spend_off(frames, ctx):
    df = frames["quarterly_summary"].withColumn(
        "inference_spend_usd", (F.col("inference_spend_usd") + F.lit(1)).cast("decimal(38,10)")
    )
    return _with(frames, "quarterly_summary", df)


def variance_off_by_last_place(frames, ctx):
    # What Spark's decimal(38,9) subtraction did to 20.0000000002 - 20.0000000001.
    df = frames["revshare_reconciliation"].withColumn(
        "variance_usd",
        F.when(F.col("agreement_id") == "paid", F.lit(D("0")).cast("decimal(38,10)")).otherwise(
            F.col("variance_usd")
        ),
    )
    return _with(frames, "revshare_reconciliation", df)


def expected_not_basis_times_rate(frames, ctx):
    paid = F.col("agreement_id") == "paid"
    df = (
        frames["revshare_reconciliation"]
        .withColumn(
            "expected_usd",
            F.when(paid, F.col("expected_usd") + F.lit(D("0.01"))).otherwise(F.col("expected_usd")),
        )
        .withColumn("variance_usd", (money("settled_usd") - money("expected_usd")).cast(MONEY))
    )
    return _with(frames, "revshare_reconciliation", df)


def unknown_status(frames, ctx):
    df = frames["revshare_reconciliation"].withColumn("status", F.lit("settled-ish"))
    return _with(frames, "revshare_reconciliation", df)


def unit_cost_a_cent_more(frames, ctx):
    df = frames["unit_cost_monthly"].withColumn(
        "allocated_spend_usd", (F.col("allocated_spend_usd") + F.lit(D("0.01"))).cast(MONEY)
    )
    return _with(frames, "unit_cost_monthly", df)


def burndown_remaining_a_cent_off(frames, ctx):
    df = frames["commitment_burndown"].withColumn(
        "remaining_usd",
        F.when(F.month("month_start") == 2, money("remaining_usd") + F.lit(D("0.01")))
        .otherwise(money("remaining_usd"))
        .cast(MONEY),
    )
    return _with(frames, "commitment_burndown", df)


def forecast_not_labelled(frames, ctx):
    df = frames["quarterly_forecast"].withColumn("is_projection", F.lit(False))
    return _with(frames, "quarterly_forecast", df)


def unknown_month_status(frames, ctx):
    df = frames["inference_spend_daily"].withColumn("month_status", F.lit("complete"))
    return _with(frames, "inference_spend_daily", df)


CRITICAL = [
    (dup_unit_cost, "staging.unit_cost_monthly", "keys", "2"),
    (null_fiscal_label, "staging.quarterly_summary", "required", "1"),
    (lake_total_a_cent_more, "staging.inference_spend_daily", "control_totals", "1"),
    (summary_spend_off, "staging.quarterly_summary", "control_totals", "1"),
    (unit_cost_a_cent_more, "staging.unit_cost_monthly", "control_totals", "1"),
    (lake_revenue_a_cent_more, "staging.unit_margin_monthly", "control_totals", "1"),
    (margin_cost_a_cent_more, "staging.unit_margin_monthly", "control_totals", "1"),
    (margin_paid_a_cent_more, "staging.unit_margin_monthly", "control_totals", "1"),
    (margin_off_by_last_place, "staging.unit_margin_monthly", "control_totals", "2"),
    (burndown_remaining_a_cent_off, "staging.commitment_burndown", "control_totals", "1"),
    (forecast_not_labelled, "staging.quarterly_forecast", "status_values", "12"),
    (
        variance_off_by_last_place,
        "staging.revshare_reconciliation",
        "reconciliation_arithmetic",
        "1",
    ),
    (
        expected_not_basis_times_rate,
        "staging.revshare_reconciliation",
        "reconciliation_arithmetic",
        "1",
    ),
    (unknown_status, "staging.revshare_reconciliation", "status_values", "2"),
    (unknown_month_status, "staging.inference_spend_daily", "status_values", "4"),
]


@pytest.mark.parametrize(
    ("tamper", "suite", "check", "observed"), CRITICAL, ids=[c[0].__name__ for c in CRITICAL]
)
def test_critical_failure_blocks_the_publish(
    spark, quality_env, conn, batch, published, tamper, suite, check, observed
):
    before = marts_hash(conn)
    with pytest.raises(QualityGateFailed, match=f"{suite}: {check} ") as failure:
        publish_batch(spark, quality_env, batch, tamper)
    assert marts_hash(conn) == before
    assert [f.check_name for f in failure.value.failures] == [check], str(failure.value)
    run_id = _last_failed_run(conn)
    critical = [r for r in failed_checks(conn, run_id) if r[2] == "critical"]
    assert critical == [(suite, check, "critical", observed)]
    with conn.cursor() as cur:
        cur.execute("SELECT status, error FROM audit.runs WHERE run_id = %s", (run_id,))
        status, error = cur.fetchone()
    assert status == "failed" and f"{suite}: {check} " in error


def _last_failed_run(conn) -> str:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT run_id FROM audit.runs WHERE status = 'failed' ORDER BY finished_at DESC LIMIT 1"
        )
        (run_id,) = cur.fetchone()
    conn.commit()
    return run_id


def test_period_report_links_the_data_docs_and_counts_the_warnings(published, conn, tmp_path):
    from inference_ledger.report import write_period_report

    ctx, _ = published
    page = write_period_report(conn, "2024-Q1", tmp_path).read_text()
    assert '<span class="dq-warnings">2 warnings</span>' in page
    href = page.split('">Data Docs of the run</a>')[0].rsplit('<a href="', 1)[1]
    site = (tmp_path / "2024-Q1" / href).resolve()
    assert site == (ctx.settings.home / "data_docs" / ctx.run_id / "index.html").resolve()
    assert site.exists()
