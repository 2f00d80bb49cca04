"""The whole pipeline on generated data, against the real embedded Postgres and Spark.

Two generated quarters are published once on a ledger of their own (`published`); the tests that
only read it share it, and every test that runs, closes or breaks something works on a copy of
it (`own`: database and LEDGER_HOME), so no test depends on what another did."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace

import pytest
from pyspark.sql import functions as F

from inference_ledger import lake
from inference_ledger.db import connect
from inference_ledger.pipeline import prepare, run_pipeline
from inference_ledger.quality import QualityGateFailed
from inference_ledger.sample import SCENARIO_QUARTERS, generate_landing
from inference_ledger.steps.aggregate import AggregateStep
from inference_ledger.steps.ingest import IngestStep
from inference_ledger.steps.publish import PublishStep
from tests.reliability_support import _url_of, drop_database, isolated_ledger, make_baseline

# End to end: generated quarters run, rerun and closed through the pipeline and the CLI.
pytestmark = pytest.mark.slow

AS_OF = date(2026, 11, 27)
MARTS = [
    "quarterly_summary",
    "revshare_reconciliation",
    "inference_spend_daily",
    "unit_cost_monthly",
]


@pytest.fixture(scope="module")
def published(spark, pg_url, tmp_path_factory):
    """2024-Q1..Q2 generated and published by one run (as of AS_OF) on a ledger of its own."""
    root = tmp_path_factory.mktemp("e2e")
    landing = root / "landing"
    generate_landing(landing, start="2024-Q1", end="2024-Q2", scale=0.3)
    baseline = make_baseline(pg_url, root, landing)
    yield baseline
    drop_database(pg_url, baseline.database)


@pytest.fixture(scope="module")
def landing(published):
    return published.landing


@pytest.fixture(scope="module")
def first_run(published):
    return published.result


@pytest.fixture
def pg_conn(published, pg_url):
    """The published ledger, for tests that only read it."""
    conn = connect(_url_of(pg_url, published.database))
    yield conn
    conn.close()


@pytest.fixture
def own(published, pg_url, tmp_path):
    """A copy of the published ledger (database and LEDGER_HOME), current for this test."""
    with isolated_ledger(pg_url, tmp_path / "home", "e2e", copy_of=published) as url:
        conn = connect(url)
        try:
            yield SimpleNamespace(url=url, conn=conn)
        finally:
            conn.close()


def marts_hash(conn) -> dict[str, tuple[str, int]]:
    out = {}
    with conn.cursor() as cur:
        for t in MARTS:
            cur.execute(
                f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')), count(*) FROM marts.{t} x"
            )
            out[t] = cur.fetchone()
    conn.commit()
    return out


def test_run_reproduces_the_scenario_from_raw_rows(first_run, pg_conn):
    assert (first_run.start, first_run.end) == (date(2024, 1, 1), date(2024, 7, 1))
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT period_label, fiscal_period_label, inference_spend_usd, revshare_paid_usd, implied_revenue_usd,"
            " revshare_received_usd, net_revshare_usd FROM marts.quarterly_summary ORDER BY period_label"
        )
        rows = cur.fetchall()
    assert [r[:2] for r in rows] == [("2024-Q1", "FY24-Q3"), ("2024-Q2", "FY24-Q4")]
    for label, _, spend, paid, implied, received, net in rows:
        target = SCENARIO_QUARTERS[label]
        assert spend == target.inference_spend_usd
        assert paid == target.revshare_paid_usd
        assert implied == target.implied_revenue_usd
        assert received == target.revshare_received_usd
        assert net == received - paid
    assert rows[0][2:5] == (
        Decimal("546800000.00"),
        Decimal("77300000.00"),
        Decimal("386500000.00"),
    )


def test_the_runs_data_docs_show_every_gate(published, first_run):
    """`ledger run` renders its Data Docs once, after its last gate: the site has the pages of
    the input files, lake and staging gates' suites, each run under the run id."""
    site = published.home / "data_docs" / first_run.run_id
    pages = {p.relative_to(site).parts[1:4] for p in site.glob("validations/**/*.html")}
    assert {suite for suite, _, run in pages if run == first_run.run_id} == {
        "ingest",
        "lake",
        "staging",
    }
    assert ("lake", "usage_facts", first_run.run_id) in pages
    assert ("staging", "quarterly_summary", first_run.run_id) in pages


def test_reconciliation_both_directions_matched(first_run, pg_conn):
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT period_label, direction, status, rate, expected_usd = settled_usd, variance_usd"
            " FROM marts.revshare_reconciliation ORDER BY 1, 2"
        )
        rows = cur.fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("2024-Q1", "payable", "matched"),
        ("2024-Q1", "receivable", "matched"),
        ("2024-Q2", "payable", "matched"),
        ("2024-Q2", "receivable", "matched"),
    ]
    assert all(r[3] == Decimal("0.2") and r[4] and r[5] == 0 for r in rows)


def test_period_calendar_and_fiscal_year_rollup(first_run, pg_conn):
    """The dimension covers every month of the published quarters with periods.py's labels;
    the fiscal-year rollup sums the quarters exactly (2024-Q1, Q2 are FY24-Q3, Q4)."""
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT month_start, month_end, month_label, quarter_label, half_label, year_label,"
            " fiscal_year_label, fiscal_quarter_label, fiscal_half_label"
            " FROM marts.period_calendar ORDER BY month_start"
        )
        months = cur.fetchall()
        cur.execute(
            "SELECT q.period_label, array_agg(DISTINCT c.fiscal_quarter_label), q.fiscal_period_label"
            " FROM marts.quarterly_summary q JOIN marts.period_calendar c"
            " ON c.quarter_label = q.period_label GROUP BY 1, 3 ORDER BY 1"
        )
        joined = cur.fetchall()
        cur.execute(
            "SELECT fiscal_year_label, quarters_published, is_complete, period_labels, period_start,"
            " period_end, inference_spend_usd, revshare_paid_usd, implied_revenue_usd,"
            " revshare_received_usd, net_revshare_usd FROM marts.fiscal_year_summary"
        )
        fiscal_years = cur.fetchall()
    assert [m[2:] for m in months] == [
        ("2024-01", "2024-Q1", "2024-H1", "2024", "FY24", "FY24-Q3", "FY24-H2"),
        ("2024-02", "2024-Q1", "2024-H1", "2024", "FY24", "FY24-Q3", "FY24-H2"),
        ("2024-03", "2024-Q1", "2024-H1", "2024", "FY24", "FY24-Q3", "FY24-H2"),
        ("2024-04", "2024-Q2", "2024-H1", "2024", "FY24", "FY24-Q4", "FY24-H2"),
        ("2024-05", "2024-Q2", "2024-H1", "2024", "FY24", "FY24-Q4", "FY24-H2"),
        ("2024-06", "2024-Q2", "2024-H1", "2024", "FY24", "FY24-Q4", "FY24-H2"),
    ]
    assert months[0][:2] == (date(2024, 1, 1), date(2024, 2, 1))
    assert months[-1][:2] == (date(2024, 6, 1), date(2024, 7, 1))
    assert joined == [("2024-Q1", ["FY24-Q3"], "FY24-Q3"), ("2024-Q2", ["FY24-Q4"], "FY24-Q4")]
    q1, q2 = SCENARIO_QUARTERS["2024-Q1"], SCENARIO_QUARTERS["2024-Q2"]
    received = q1.revshare_received_usd + q2.revshare_received_usd
    paid = q1.revshare_paid_usd + q2.revshare_paid_usd
    assert fiscal_years == [
        (
            "FY24",
            2,
            False,
            "2024-Q1,2024-Q2",
            date(2024, 1, 1),
            date(2024, 7, 1),
            q1.inference_spend_usd + q2.inference_spend_usd,
            paid,
            q1.implied_revenue_usd + q2.implied_revenue_usd,
            received,
            received - paid,
        )
    ]
    assert fiscal_years[0][6:9] == (
        Decimal("546800000.00") + q2.inference_spend_usd,
        Decimal("77300000.00") + q2.revshare_paid_usd,
        Decimal("386500000.00") + q2.implied_revenue_usd,
    )


def test_legacy_view_serves_the_ratios_under_their_old_names(first_run, pg_conn):
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT l.period_label, l.direction, l.variance_pct, r.variance_ratio,"
            " l.usage_estimate_variance_pct, r.usage_estimate_variance_ratio,"
            " r.usage_estimate_variance_usd, r.usage_estimate_usd"
            " FROM marts.revshare_reconciliation_legacy l JOIN marts.revshare_reconciliation r"
            " USING (period_label, agreement_id, direction, is_adjustment) ORDER BY 1, 2"
        )
        rows = cur.fetchall()
        cur.execute("SELECT count(*) FROM marts.revshare_reconciliation")
        assert cur.fetchone() == (len(rows),)
    assert [r[:4] for r in rows] == [
        ("2024-Q1", "payable", Decimal("0"), Decimal("0")),
        ("2024-Q1", "receivable", Decimal("0"), Decimal("0")),
        ("2024-Q2", "payable", Decimal("0"), Decimal("0")),
        ("2024-Q2", "receivable", Decimal("0"), Decimal("0")),
    ]
    for _, direction, _, _, old, new, difference, estimate in rows:
        assert old == new
        if direction == "receivable":  # a ratio of the estimate, 10 places: not a percent
            ratio = (difference / estimate).quantize(Decimal("1e-10"), rounding=ROUND_HALF_UP)
            assert new == ratio and abs(new) < Decimal("0.0001")
        else:
            assert new is None


def test_receivable_cross_check_prices_the_resale_usage(first_run, pg_conn, tmp_path):
    """The reported basis vs usage of channel azure_openai x the price sheet: the generator
    sized that usage to price at the reported resale revenue (to within rounding of tokens)."""
    summary = generate_landing(tmp_path / "again", start="2024-Q1", end="2024-Q2", scale=0.3)
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT period_label, basis_usd, usage_estimate_usd, usage_estimate_variance_usd,"
            " usage_unpriced_tokens FROM marts.revshare_reconciliation"
            " WHERE direction = 'receivable' AND NOT is_adjustment ORDER BY 1"
        )
        rows = cur.fetchall()
    assert [r[0] for r in rows] == ["2024-Q1", "2024-Q2"]
    for label, basis, estimate, difference, unpriced in rows:
        assert basis == SCENARIO_QUARTERS[label].received_basis_usd
        assert estimate == summary.azure_usage_priced_usd[label]
        assert difference == basis - estimate and abs(difference) < 1
        assert unpriced == 0


def test_every_input_row_is_accounted_for(first_run, pg_conn):
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT source, sum(rows_read), sum(rows_loaded), sum(rows_quarantined), sum(rows_superseded),"
            " sum(rows_deduplicated), count(*) FILTER (WHERE checksum_sha256 !~ '^[0-9a-f]{64}$')"
            " FROM audit.input_files WHERE run_id = %s GROUP BY source ORDER BY source",
            (first_run.run_id,),
        )
        by_source = {r[0]: r[1:] for r in cur.fetchall()}
        cur.execute("SELECT status FROM audit.runs WHERE run_id = %s", (first_run.run_id,))
        assert cur.fetchone() == ("succeeded",)
        cur.execute(
            "SELECT count(*), bool_and(success) FROM audit.dq_results WHERE run_id = %s",
            (first_run.run_id,),
        )
        checks, all_ok = cur.fetchone()
    assert set(by_source) == {
        "billing.azure",
        "usage",
        "finance.revenue",
        "finance.settlements",
        "finance.contracts",
        "finance.fx",
        "finance.prices",
    }
    for read, loaded, quarantined, superseded, deduplicated, bad_checksums in by_source.values():
        assert read == loaded + quarantined + superseded + deduplicated
        assert bad_checksums == 0
    # Month-to-date restatements and redeliveries are present in the generated data and handled.
    assert by_source["billing.azure"][3] > 0
    assert by_source["usage"][4] > 0
    assert by_source["finance.revenue"][3] > 0
    assert checks > 20 and all_ok
    assert (
        first_run.rows_read
        == first_run.rows_loaded
        + first_run.rows_quarantined
        + first_run.rows_superseded
        + first_run.rows_deduplicated
    )


def test_rerun_gives_identical_marts(first_run, own, landing):
    before = marts_hash(own.conn)
    again = run_pipeline(landing, as_of=AS_OF)
    assert again.run_id != first_run.run_id
    assert marts_hash(own.conn) == before
    # Incremental: the billing months were all ingested before, so no billing file is re-read.
    with own.conn.cursor() as cur:
        cur.execute(
            "SELECT bool_and(is_skipped), sum(rows_read), count(*) FROM audit.input_files"
            " WHERE run_id = %s AND source = 'billing.azure'",
            (again.run_id,),
        )
        assert cur.fetchone()[:2] == (True, 0)


def test_failed_quality_gate_publishes_nothing(spark, first_run, own, landing):
    before = marts_hash(own.conn)
    run = prepare(landing, None, None, "test", AS_OF)
    ctx = run.ctx
    IngestStep().run(run)
    AggregateStep().run(run)
    # The lake says one month cost a cent more than what was staged: control totals disagree.
    path = lake.run_path(ctx.lake_dir, ctx.run_id, "control_totals")
    totals = spark.read.parquet(path)
    first = totals.orderBy("period_label").first()["period_label"]
    # Only the billed-spend total (the lake also holds the unit margin's revenue totals), and
    # the other rows untouched (a sum with a literal would round them to 9 places).
    spend = (F.col("period_label") == first) & (F.col("table_name") == "inference_spend_daily")
    amount = F.when(spend, F.col("amount") + F.lit(Decimal("0.01"))).otherwise(F.col("amount"))
    tmp = path + "_tampered"
    totals.withColumn("amount", amount.cast("decimal(38,10)")).write.parquet(tmp)
    shutil.rmtree(path)
    shutil.move(tmp, path)
    with pytest.raises(QualityGateFailed, match="control totals|unexpected_rows"):
        steps_publish(run)
    assert marts_hash(own.conn) == before
    with own.conn.cursor() as cur:
        cur.execute(
            "SELECT suite, severity FROM audit.dq_results WHERE run_id = %s AND NOT success",
            (ctx.run_id,),
        )
        assert cur.fetchall() == [("staging.inference_spend_daily", "critical")]
        cur.execute(
            "SELECT status, error LIKE 'QualityGateFailed%%' FROM audit.runs WHERE run_id = %s",
            (ctx.run_id,),
        )
        assert cur.fetchone() == ("failed", True)


def steps_publish(run):
    try:
        return PublishStep().run(run)
    except BaseException as exc:
        run.store.finish(error=f"{type(exc).__name__}: {exc}")
        raise


def test_cli_run_against_a_configured_database_url(first_run, own, landing, monkeypatch, capsys):
    from inference_ledger import cli

    before = marts_hash(own.conn)
    monkeypatch.setenv("LEDGER_DATABASE_URL", own.url)
    assert cli.main(["run", "--landing", str(landing), "--as-of", AS_OF.isoformat()]) == 0
    assert "rows read" in capsys.readouterr().out
    assert marts_hash(own.conn) == before


def test_bad_input_fails_clearly_and_keeps_published_marts(
    first_run, own, landing, tmp_path, capsys
):
    from inference_ledger import cli

    before = marts_hash(own.conn)
    broken = tmp_path / "landing"
    shutil.copytree(landing, broken)
    revenue = sorted((broken / "finance" / "revenue").glob("*.csv"))[0]
    lines = revenue.read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("amount")
    revenue.write_text(
        "\n".join(
            ",".join(c for i, c in enumerate(line.split(",")) if i != drop) for line in lines[:3]
        )
        + "\n"
    )
    assert cli.main(["run", "--landing", str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"{revenue}: missing required column(s) amount" in err
    assert marts_hash(own.conn) == before
    with own.conn.cursor() as cur:
        cur.execute(
            "SELECT status FROM audit.runs WHERE landing_dir = %s", (str(broken.resolve()),)
        )
        assert cur.fetchall() == [("failed",)]


def test_period_report_and_close(first_run, own, tmp_path, capsys):
    from inference_ledger import cli

    assert cli.main(["report", "--period", "2024-Q1", "--out", str(tmp_path)]) == 0
    page = (tmp_path / "2024-Q1" / "index.html").read_text()
    assert "546,800,000.00" in page and "77,300,000.00" in page and "matched" in page
    assert (tmp_path / "2024-Q1" / "reconciliation.csv").read_text().count("\n") == 3
    assert cli.main(["close", "--period", "2024-Q1", "--by", "tester"]) == 0
    with own.conn.cursor() as cur:
        cur.execute(
            "SELECT closed_by, length(snapshot_sha256) FROM audit.closed_periods WHERE period_label = '2024-Q1'"
        )
        assert cur.fetchone() == ("tester", 64)
    assert cli.main(["close", "--period", "2024-Q1"]) == 1
    assert "already closed" in capsys.readouterr().err


def test_closed_period_does_not_move(first_run, own, landing, tmp_path):
    """Q1 closed, then a late revenue entry changes Q2; the one for the closed Q1 is posted as
    a prior-period adjustment in Q2."""
    from inference_ledger import cli

    assert cli.main(["close", "--period", "2024-Q1", "--by", "tester"]) == 0
    with own.conn.cursor() as cur:
        cur.execute("SELECT period_label FROM audit.closed_periods")
        assert cur.fetchall() == [("2024-Q1",)]
    before = marts_hash(own.conn)
    late = tmp_path / "landing"
    shutil.copytree(landing, late)
    (late / "finance" / "revenue" / "late.csv").write_text(
        "entry_id,entry_version,revenue_date,product_line,amount,currency,description\n"
        "late-1,1,2024-02-10,api,1000000.00,USD,late Q1 entry\n"
        "late-2,1,2024-05-10,api,1000000.00,USD,late Q2 entry\n"
    )
    run_pipeline(late, as_of=AS_OF)
    after = marts_hash(own.conn)
    assert after != before
    with own.conn.cursor() as cur:
        cur.execute(
            "SELECT period_label, is_adjustment, basis_usd, expected_usd, settled_usd, status,"
            " adjustment_of_period, adjustment_inputs FROM marts.revshare_reconciliation"
            " WHERE direction = 'payable' ORDER BY 1, 2"
        )
        rows = cur.fetchall()
        cur.execute(
            "SELECT period_label, revshare_paid_usd, revshare_paid_adjustment_usd"
            " FROM marts.quarterly_summary ORDER BY 1"
        )
        summary = cur.fetchall()
    q1, q2, q2_adjustment = rows
    assert q1[:6] == (
        "2024-Q1",
        False,
        Decimal("386500000.00"),
        Decimal("77300000.00"),
        Decimal("77300000.00"),
        "matched",
    )
    assert q2[2] == SCENARIO_QUARTERS["2024-Q2"].implied_revenue_usd + Decimal("1000000.00")
    assert q2[3] == Decimal("109700000.00")
    assert q2[5] == "underpaid"
    # The late Q1 entry is a prior-period adjustment in Q2, traceable to the file it came in.
    assert q2_adjustment == (
        "2024-Q2",
        True,
        Decimal("1000000.00"),
        Decimal("200000.00"),
        Decimal("0"),
        "underpaid",  # Q1 after the adjustment: 77.5M expected, 77.3M paid
        "2024-Q1",
        "finance/revenue/late.csv (new)",
    )
    assert summary == [
        ("2024-Q1", Decimal("77300000.00"), Decimal("0")),
        ("2024-Q2", Decimal("109500000.00"), Decimal("0")),
    ]


def test_billing_control_totals_and_workload_share(first_run, pg_conn):
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), sum(rows_loaded), bool_and(billed_cost_in = billed_cost_lake),"
            " sum(billed_cost_usd) FROM audit.billing_control_totals WHERE run_id = %s",
            (first_run.run_id,),
        )
        months, rows, tied, usd = cur.fetchone()
        cur.execute("SELECT sum(billed_cost_usd) FROM marts.inference_spend_daily")
        published = cur.fetchone()[0]
        cur.execute(
            "SELECT workload, sum(share_of_month) FROM marts.workload_share_monthly"
            " GROUP BY workload ORDER BY workload"
        )
        shares = dict(cur.fetchall())
    assert (months, tied) == (6, True) and rows > 0
    assert usd == published
    assert set(shares) == {"inference", "other", "training"}
    # Each month's shares add up to 1 (to the 10 places they are rounded to).
    assert abs(sum(shares.values()) - 6) < Decimal("1e-9")


def test_missing_fx_rate_fails_only_that_billing_month(first_run, own, landing, tmp_path, capsys):
    import csv
    import gzip
    import io
    import json

    from inference_ledger import cli
    from inference_ledger.ingest import exports
    from tests.reliability_support import newest_run

    before = marts_hash(own.conn)
    broken = tmp_path / "landing"
    shutil.copytree(landing, broken)
    newest = newest_run(broken, "20240101-20240131")
    doc = json.loads(newest.read_text())
    blob = exports.blob_path(newest.parent, doc["blobs"][0]["blobName"])
    raw = (
        gzip.decompress(blob.read_bytes()).decode()
        if blob.name.endswith(".gz")
        else blob.read_text()
    )
    rows = list(csv.DictReader(io.StringIO(raw)))
    extra = dict(
        rows[0], CostInBillingCurrency="1000", BillingCurrencyCode="JPY", Date="01/15/2024"
    )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows([*rows, extra])
    data = out.getvalue().encode()
    blob.write_bytes(gzip.compress(data) if blob.name.endswith(".gz") else data)
    doc["blobs"][0]["dataRowCount"] += 1
    doc["dataRowCount"] = doc.get("dataRowCount", 0) + 1
    newest.write_text(json.dumps(doc))

    assert cli.main(["run", "--landing", str(broken), "--as-of", AS_OF.isoformat()]) == 2
    err = capsys.readouterr().err
    assert "2024-01: no FX rate to USD for JPY on 2024-01-15" in err
    # January kept its previously published spend; the other months were republished as is.
    spend_marts = ("inference_spend_daily", "unit_cost_monthly")
    after = marts_hash(own.conn)
    assert {m: after[m] for m in spend_marts} == {m: before[m] for m in spend_marts}
    with own.conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM audit.quarantine q JOIN audit.runs r USING (run_id)"
            " WHERE r.started_at = (SELECT max(started_at) FROM audit.runs)"
            " AND q.reason LIKE 'billing month not loaded: no FX rate to USD for JPY on 2024-01-15%%'"
        )
        assert cur.fetchone()[0] == doc["dataRowCount"]  # every row of that run
