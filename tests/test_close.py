"""Period close, prior-period adjustments and reopen, through the whole pipeline on a tiny
hand-made landing folder, in a database and LEDGER_HOME of their own (the other tests' marts
and closed periods are untouched)."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from inference_ledger import cli
from inference_ledger.db import connect, migrate
from inference_ledger.pipeline import prepare, run_pipeline
from inference_ledger.steps.aggregate import AggregateStep
from inference_ledger.steps.ingest import IngestStep
from inference_ledger.steps.publish import PublishStep
from tests.reliability_support import (
    copy_landing,
    create_database,
    current_ledger,
    drop_database,
    isolated_ledger,
)

# End to end: pipeline and CLI runs, closes and reopens on one ledger.
pytestmark = pytest.mark.slow

AS_OF = date(2026, 11, 27)

CONTRACTS = """agreement_id,direction,counterparty,basis,rate,effective_from,effective_to,cap_amount,cap_currency,tolerance_abs,tolerance_pct,payment_terms_days
PAY,payable,Partner,revenue:api,0.20,2024-01-01,,,,1.00,0.001,30
RCV,receivable,Partner,reported,0.20,2024-01-01,2024-05-15,,,1.00,0.001,30
"""
REVENUE = """entry_id,entry_version,revenue_date,product_line,amount,currency,description
E1,1,2024-02-01,api,1000.00,USD,api
E2,1,2024-05-01,api,2000.00,USD,api
E3,1,2024-08-01,api,3000.00,USD,api
X1,1,2024-02-01,other,999.00,USD,not in the basis
"""
SETTLEMENTS = """statement_id,supersedes_statement_id,agreement_id,direction,counterparty,period_start,period_end,reported_basis_amount,rate,amount,currency,statement_date,payment_date,reference
S-Q1,,PAY,payable,Partner,2024-01-01,2024-04-01,1000.00,0.20,200.00,USD,2024-04-15,2024-04-30,
S-Q2,,PAY,payable,Partner,2024-04-01,2024-07-01,2000.00,0.20,400.00,USD,2024-07-15,2024-07-30,
S-Q3,,PAY,payable,Partner,2024-07-01,2024-10-01,3000.00,0.20,600.00,USD,2024-10-15,2024-10-30,
R-Q1,,RCV,receivable,Partner,2024-01-01,2024-04-01,100.00,0.20,20.00,USD,2024-04-15,2024-04-30,
"""
PRICES = """channel,model,token_type,unit_tokens,unit_price,currency,effective_from,effective_to
azure_openai,m,input,1000000,2.00,USD,2024-01-01,
azure_openai,m,cached_input,1000000,0.50,USD,2024-01-01,
azure_openai,m,output,1000000,8.00,USD,2024-01-01,
"""
# Late arrivals: a Q1 revenue entry and a statement replacing S-Q1.
LATE_REVENUE = """entry_id,entry_version,revenue_date,product_line,amount,currency,description
L1,1,2024-03-30,api,500.00,USD,late Q1 entry
"""
LATE_STATEMENT = """statement_id,supersedes_statement_id,agreement_id,direction,counterparty,period_start,period_end,reported_basis_amount,rate,amount,currency,statement_date,payment_date,reference
S-Q1-R1,S-Q1,PAY,payable,Partner,2024-01-01,2024-04-01,1250.00,0.20,250.00,USD,2024-05-15,2024-05-30,
"""


def _usage_page(day: date, inp: int, out: int) -> str:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    result = {
        "object": "organization.usage.completions.result",
        "input_tokens": inp,
        "output_tokens": out,
        "input_cached_tokens": 0,
        "num_model_requests": 10,
        "project_id": "proj_a",
        "model": "m",
        "batch": False,
        "service_tier": "default",
    }
    bucket = {"object": "bucket", "start_time": start, "end_time": start + 86_400}
    page = {"object": "page", "data": [{**bucket, "results": [result]}], "has_more": False}
    return json.dumps(page)


def _landing(root):
    f = root / "finance"
    for sub in ("contracts", "revenue", "settlements", "fx", "prices"):
        (f / sub).mkdir(parents=True, exist_ok=True)
    (f / "contracts" / "contracts.csv").write_text(CONTRACTS)
    (f / "revenue" / "revenue_2024.csv").write_text(REVENUE)
    (f / "settlements" / "settlements.csv").write_text(SETTLEMENTS)
    (f / "prices" / "prices.csv").write_text(PRICES)
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(366 + 90)]
    (f / "fx" / "fx.csv").write_text(
        "rate_date,currency,usd_per_unit\n" + "".join(f"{d},USD,1.000000\n" for d in days)
    )
    # Resale usage: 10M in + 5M out on 2024-02-01 = 20 + 40 = $60; 1M in on 2024-05-10 = $2;
    # 2024-05-20 is after the receivable terms end (2024-05-15): not in the estimate.
    for day, inp, out in (
        (date(2024, 2, 1), 10_000_000, 5_000_000),
        (date(2024, 5, 10), 1_000_000, 0),
        (date(2024, 5, 20), 7_000_000, 7_000_000),
    ):
        folder = root / "usage" / "azure_openai" / day.isoformat()
        folder.mkdir(parents=True)
        (folder / "page-0001.json").write_text(_usage_page(day, inp, out))
    return root


def marts(env):
    return q(
        env,
        "SELECT 'r', md5(string_agg(x::text, '|' ORDER BY x::text)) FROM marts.revshare_reconciliation x"
        " UNION ALL SELECT 's', md5(string_agg(x::text, '|' ORDER BY x::text)) FROM marts.quarterly_summary x",
    )


RECON = (
    "SELECT period_label, direction, is_adjustment, basis_usd, expected_usd, settled_usd,"
    " variance_usd, status, statement_ids, superseded_statement_ids, adjustment_of_period,"
    " adjustment_reason, adjustment_inputs, usage_estimate_usd, usage_estimate_variance_usd"
    " FROM marts.revshare_reconciliation ORDER BY period_label, direction, is_adjustment"
)
SIGNOFF = (
    "SELECT period_label, closed_by, accepted_exception_count, accepted_exceptions,"
    " accepted_dq_failure_count, accepted_dq_failures, acceptance_reason"
    " FROM audit.closed_periods WHERE reopened_at IS NULL ORDER BY 1"
)
SUMMARY = (
    "SELECT period_label, revshare_paid_usd, implied_revenue_usd, revshare_received_usd,"
    " net_revshare_usd, revshare_paid_adjustment_usd FROM marts.quarterly_summary ORDER BY 1"
)


Q1_ROWS = "SELECT * FROM marts.revshare_reconciliation WHERE period_label = '2024-Q1'"
SIGNED_Q1 = "Partner short-paid Q1 by $50; recovery agreed for Q2"


@dataclass
class Ledger:
    """A ledger: its database and LEDGER_HOME (a state below is kept as a template that
    `isolated_ledger` copies), the RunResult of the run that made it and what its fixture saw
    on the way (`seen`: exit codes, figures before an action)."""

    database: str
    home: Path
    url: str
    result: Any = None
    seen: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def landings(tmp_path_factory):
    """The landing folder and a copy of it with the late Q1 arrivals (shared: read only)."""
    landing = _landing(tmp_path_factory.mktemp("close_landing"))
    late = copy_landing(landing, tmp_path_factory.mktemp("close_late") / "landing")
    (late / "finance" / "revenue" / "late.csv").write_text(LATE_REVENUE)
    (late / "finance" / "settlements" / "settlements_fix.csv").write_text(LATE_STATEMENT)
    return SimpleNamespace(landing=landing, late=late)


@contextlib.contextmanager
def new_state(pg_url, tmp_path_factory, prefix: str, template: Ledger | None = None):
    """A module-long ledger: empty and migrated, or a copy of `template` (database and
    LEDGER_HOME); dropped at the end of the module."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    home = tmp_path_factory.mktemp(prefix) / "home"
    create_database(pg_url, name, template.database if template else None)
    try:
        if template is None:
            migrate(url)
            home.mkdir()
        else:
            shutil.copytree(template.home, home, copy_function=shutil.copy2)
        yield Ledger(name, home, url)
    finally:
        drop_database(pg_url, name)


REOPEN_Q1 = ["reopen", "--period", "2024-Q1", "--reason", "late revenue restatement", "--by", "cfo"]
SIGNOFF_Q2 = ["--accept-exceptions", "--reason", "RCV Q2 statement chased with Partner"]


@pytest.fixture(scope="module")
def first(spark, pg_url, tmp_path_factory, landings):
    """The landing published by one run on an empty ledger: nothing closed."""
    with new_state(pg_url, tmp_path_factory, "close_first") as led:
        with current_ledger(led.home, led.url):
            led.result = run_pipeline(landings.landing, as_of=AS_OF)
        yield led


@pytest.fixture(scope="module")
def late(first, pg_url, tmp_path_factory, landings):
    """`first`, Q1 closed (clean: no sign-off), then the late arrivals published by one run;
    `seen` keeps the close's exit code, sign-off rows and Q1's rows before that run."""
    with new_state(pg_url, tmp_path_factory, "close_late", first) as led:
        with current_ledger(led.home, led.url):
            led.seen["close"] = cli.main(["close", "--period", "2024-Q1", "--by", "controller"])
            led.seen["signoff"] = q(led, SIGNOFF)
            led.seen["closed_q1"] = q(led, RECON)[:2]
            led.seen["before"] = q(led, Q1_ROWS)
            led.result = run_pipeline(landings.late, as_of=AS_OF)
        yield led


@pytest.fixture(scope="module")
def reopened(late, pg_url, tmp_path_factory, landings):
    """`late`, Q1 reopened by the cfo (REOPEN_Q1), then the late landing published again."""
    with new_state(pg_url, tmp_path_factory, "close_reopened", late) as led:
        with current_ledger(led.home, led.url):
            assert cli.main(REOPEN_Q1) == 0
            led.result = run_pipeline(landings.late, as_of=AS_OF)
        yield led


@pytest.fixture(scope="module")
def signed(reopened, pg_url, tmp_path_factory):
    """`reopened`, Q1 closed again with a sign-off of its exception (no run)."""
    with new_state(pg_url, tmp_path_factory, "close_signed", reopened) as led:
        with current_ledger(led.home, led.url):
            argv = ["close", "--period", "2024-Q1", "--accept-exceptions", "--reason", SIGNED_Q1]
            assert cli.main([*argv, "--by", "controller"]) == 0
        yield led


@pytest.fixture(scope="module")
def q4(signed, pg_url, tmp_path_factory, landings):
    """`signed`, Q2 closed with a sign-off (SIGNOFF_Q2) and Q3 closed, then a late Q3 entry
    published by one run (into 2024-Q4); `seen["close_q3"]` is Q3's close exit code."""
    with new_state(pg_url, tmp_path_factory, "close_q4", signed) as led:
        landing = copy_landing(landings.late, led.home.parent / "landing")
        (landing / "finance" / "revenue" / "late_q3.csv").write_text(
            "entry_id,entry_version,revenue_date,product_line,amount,currency,description\n"
            "L3,1,2024-09-30,api,100.00,USD,late Q3 entry\n"
        )
        with current_ledger(led.home, led.url):
            assert cli.main(["close", "--period", "2024-Q2", *SIGNOFF_Q2]) == 0
            led.seen["close_q3"] = cli.main(["close", "--period", "2024-Q3"])
            led.result = run_pipeline(landing, as_of=AS_OF)
        yield led


@pytest.fixture
def copy(pg_url, tmp_path):
    """`copy(state)`: this test's own copy of a state (database and LEDGER_HOME), current
    through the environment until the test ends."""
    with contextlib.ExitStack() as stack:

        def make(state: Ledger) -> Ledger:
            home = tmp_path / f"home{len(stack._exit_callbacks)}"
            url = stack.enter_context(isolated_ledger(pg_url, home, "close", copy_of=state))
            return Ledger(make_url(url).database, home, url)

        yield make


def q(env, query, *args):
    conn = connect(env.url)
    try:
        with conn.cursor() as cur:
            cur.execute(query, args or None)
            return cur.fetchall()
    finally:
        conn.close()


def test_first_run_reconciles_both_directions(first):
    env, result = first, first.result
    assert (result.start, result.end) == (date(2024, 1, 1), date(2024, 10, 1))
    rows = {(r[0], r[1], r[2]): r for r in q(env, RECON)}
    assert set(rows) == {
        ("2024-Q1", "payable", False),
        ("2024-Q1", "receivable", False),
        ("2024-Q2", "payable", False),
        ("2024-Q2", "receivable", False),  # terms end 2024-05-15, inside Q2
        ("2024-Q3", "payable", False),
    }
    assert rows[("2024-Q1", "payable", False)][3:10] == (
        D("1000.00"),
        D("200.00"),
        D("200.00"),
        D("0"),
        "matched",
        "S-Q1",
        None,
    )
    rcv1 = rows[("2024-Q1", "receivable", False)]
    assert rcv1[3:8] == (D("100.00"), D("20.00"), D("20.00"), D("0"), "matched")
    assert rcv1[13:] == (D("60.00"), D("40.00"))  # reported 100 vs usage x price 60
    rcv2 = rows[("2024-Q2", "receivable", False)]
    assert rcv2[5] is None and rcv2[7] == "missing_settlement"
    assert rcv2[13] == D("2.00")  # 2024-05-20 usage is after the terms end
    assert q(env, SUMMARY) == [
        ("2024-Q1", D("200.00"), D("1000.00"), D("20.00"), D("-180.00"), D("0")),
        ("2024-Q2", D("400.00"), D("2000.00"), D("0"), D("-400.00"), D("0")),
        ("2024-Q3", D("600.00"), D("3000.00"), D("0"), D("-600.00"), D("0")),
    ]


def test_close_then_a_late_change_posts_a_prior_period_adjustment(late, tmp_path):
    # `late` closed Q1 and then ran the late arrivals; what it saw in between is in `seen`.
    env = late
    assert env.seen["close"] == 0
    # Q1 is clean (both directions matched): it closes without a sign-off, none is recorded.
    assert env.seen["signoff"] == [("2024-Q1", "controller", 0, None, 0, None, None)]
    closed_q1 = env.seen["closed_q1"]
    before = env.seen["before"]
    # The closed quarter did not move ...
    after = q(env, Q1_ROWS)
    assert sorted(after) == sorted(before)
    assert q(env, RECON)[:2] == closed_q1
    # ... its late changes are one adjustment row in the first open quarter, traceable.
    adjustments = [r for r in q(env, RECON) if r[2]]
    assert adjustments == [
        (
            "2024-Q2",
            "payable",
            True,
            D("500.00"),
            D("100.00"),
            D("50.00"),
            D("-50.00"),
            "underpaid",  # Q1 now: 300 expected, 250 paid
            "S-Q1-R1",
            "S-Q1",
            "2024-Q1",
            "2024-Q1: basis +500.00, expected +100.00, settled +50.00; "
            "statements now S-Q1-R1 (closed: S-Q1)",
            "finance/revenue/late.csv (new); finance/settlements/settlements_fix.csv (new)",
            None,
            None,
        )
    ]
    # The open quarter books it: paid 400 + 50, implied 2000 + 250.
    assert q(env, SUMMARY)[1] == (
        "2024-Q2",
        D("450.00"),
        D("2250.00"),
        D("0"),
        D("-450.00"),
        D("50.00"),
    )
    # Closed figures + adjustments = the recomputed figures.
    assert q(
        env,
        "SELECT sum(basis_usd), sum(settled_usd) FROM marts.revshare_reconciliation"
        " WHERE direction = 'payable' AND (period_label = '2024-Q1' OR is_adjustment)",
    ) == [(D("1500.00"), D("250.00"))]
    # The report shows it, both where it is posted and in the closed period's page (a report
    # only reads the ledger).
    with current_ledger(env.home, env.url):
        assert cli.main(["report", "--period", "2024-Q2", "--out", str(tmp_path)]) == 0
        page = (tmp_path / "2024-Q2" / "index.html").read_text()
        assert "Prior-period adjustment posted into this open period for closed 2024-Q1" in page
        assert "finance/revenue/late.csv (new)" in page
        assert cli.main(["report", "--period", "2024-Q1", "--out", str(tmp_path)]) == 0
        page = (tmp_path / "2024-Q1" / "index.html").read_text()
    assert "CLOSED" in page and "marts match the snapshot" in page
    assert 'data-col="posted_in">2024-Q2</td>' in page


def test_rerun_with_the_same_inputs_is_identical(late, landings, copy):
    # A copy of `late`: its marts were published by a run of the late landing (with Q1 closed
    # and its adjustment), so running that landing again is a rerun.
    env = copy(late)
    before = marts(env)
    # Both marts hold rows (an empty one's md5 is NULL): "identical" is not two empty marts.
    assert [tag for tag, md5 in before if md5] == ["r", "s"]
    run_pipeline(landings.late, as_of=AS_OF)
    assert marts(env) == before


def test_close_and_reopen_are_explicit_and_recorded(late, reopened, copy, capsys):
    env = copy(late)  # Q1 closed
    assert cli.main(["close", "--period", "2024-Q1"]) == 1
    assert "already closed" in capsys.readouterr().err
    assert cli.main(["reopen", "--period", "2024-Q2", "--reason", "x"]) == 1
    assert "2024-Q2 is not closed" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --reason is required
        cli.main(["reopen", "--period", "2024-Q1"])
    assert cli.main(["reopen", "--period", "2024-Q1", "--reason", " ", "--by", "cfo"]) == 1
    assert "a reason is required" in capsys.readouterr().err
    assert cli.main(REOPEN_Q1) == 0
    assert q(
        env,
        "SELECT reopened_by, reopen_reason, reopened_at IS NOT NULL FROM audit.closed_periods",
    ) == [("cfo", "late revenue restatement", True)]
    # Reopened: the next run republishes Q1 from its inputs and drops the adjustment (that run
    # is `reopened`'s: the same reopen on a copy of `late`, then the late landing again).
    env = reopened
    rows = q(env, RECON)
    assert [r[:3] for r in rows if r[2]] == []
    q1 = next(r for r in rows if r[:2] == ("2024-Q1", "payable"))
    assert q1[3:10] == (
        D("1500.00"),
        D("300.00"),
        D("250.00"),
        D("-50.00"),
        "underpaid",
        "S-Q1-R1",
        "S-Q1",
    )
    assert q(env, SUMMARY)[:2] == [
        ("2024-Q1", D("250.00"), D("1250.00"), D("20.00"), D("-230.00"), D("0")),
        ("2024-Q2", D("400.00"), D("2000.00"), D("0"), D("-400.00"), D("0")),
    ]


Q1_UNDERPAID = {
    "agreement_id": "PAY",
    "direction": "payable",
    "is_adjustment": False,
    "adjustment_of_period": None,
    "status": "underpaid",
    "expected_usd": "300.0000000000",
    "settled_usd": "250.0000000000",
    "variance_usd": "-50.0000000000",
    "tolerance_usd": "1.0000000000",  # max(1.00, 0.001 x 300)
    "payment_due_date": "2024-05-01",  # 2024-04-01 + 30 days
}
EVENTS = (
    "SELECT event, event_by, reason, snapshot_sha256 IS NOT NULL, accepted_exception_count,"
    " accepted_dq_failure_count FROM audit.period_close_events ORDER BY event_at, event_id"
)


def test_a_period_with_exceptions_closes_only_with_a_recorded_signoff(reopened, copy, capsys):
    """Reopened Q1 now owes 300 and was paid 250: an exception. `ledger close` refuses it and
    says how to sign off; the sign-off closes it and records what was accepted, why, who, when."""
    env = copy(reopened)
    capsys.readouterr()
    assert q(
        env, "SELECT * FROM marts.reconciliation_exceptions WHERE period_label = '2024-Q1'"
    ) == [
        (
            "2024-Q1",
            "PAY",
            "payable",
            False,
            "Partner",
            "underpaid",
            D("300.00"),
            D("250.00"),
            D("-50.00"),
            D("-0.1666666667"),
            D("1.00"),
            date(2024, 5, 1),
            "S-Q1-R1",
            None,
        )
    ]
    assert cli.main(["close", "--period", "2024-Q1", "--by", "controller"]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == (
        "ledger: period 2024-Q1 cannot be closed: it has 1 open reconciliation exception\n"
        "  exception: PAY payable: underpaid, variance -50.00 USD (expected 300.00, settled"
        " 250.00, tolerance 1.00, due 2024-05-01)\n"
        "fix them and publish again, or close it anyway with a recorded sign-off: ledger close"
        ' --period 2024-Q1 --accept-exceptions --reason "why they are accepted" (close DAG:'
        " params accept_exceptions=true and reason)\n"
    )
    # Refused: still open, nothing recorded.
    assert q(env, "SELECT reopened_at IS NOT NULL FROM audit.closed_periods") == [(True,)]
    assert len(q(env, EVENTS)) == 2
    # The sign-off flags go together, with a reason that says something (usage errors, exit 2).
    for argv, message in (
        (["--accept-exceptions"], "--accept-exceptions needs --reason"),
        (["--accept-exceptions", "--reason", "  "], "--accept-exceptions needs --reason"),
        (["--reason", "agreed"], "--reason goes with --accept-exceptions"),
    ):
        assert cli.main(["close", "--period", "2024-Q1", *argv]) == 2, argv
        assert capsys.readouterr().err.startswith(f"ledger: close: {message}"), argv
    assert len(q(env, EVENTS)) == 2

    (before,) = q(env, "SELECT now()")[0]
    reason = SIGNED_Q1
    argv = ["close", "--period", "2024-Q1", "--accept-exceptions", "--reason", f" {reason} "]
    assert cli.main([*argv, "--by", "controller"]) == 0
    (after,) = q(env, "SELECT now()")[0]
    (sha,) = q(env, "SELECT snapshot_sha256 FROM audit.closed_periods")[0]
    assert capsys.readouterr().out == (
        f"closed 2024-Q1: snapshot sha256 {sha}\n"
        f"signed off by controller, accepting 1 open reconciliation exception: {reason}\n"
    )
    assert q(env, SIGNOFF) == [("2024-Q1", "controller", 1, [Q1_UNDERPAID], 0, None, reason)]
    (closed_at,) = q(env, "SELECT closed_at FROM audit.closed_periods")[0]
    assert before <= closed_at <= after
    assert q(env, EVENTS) == [
        ("closed", "controller", None, True, 0, 0),
        ("reopened", "cfo", "late revenue restatement", False, 0, 0),
        ("closed", "controller", reason, True, 1, 0),
    ]
    assert q(
        env,
        "SELECT accepted_exceptions, event_at FROM audit.period_close_events"
        " ORDER BY event_id DESC LIMIT 1",
    ) == [([Q1_UNDERPAID], closed_at)]


def test_publish_refuses_when_a_period_was_closed_after_aggregate(signed, landings, copy):
    from inference_ledger.publish import ClosedPeriodsChanged

    env = copy(signed)  # Q1 closed (signed off)
    before = marts(env)
    run = prepare(landings.late, None, None, "test", AS_OF)
    IngestStep().run(run)
    AggregateStep().run(run)
    # Q2's receivable statement never came (missing_settlement): closed with a sign-off.
    assert cli.main(["close", "--period", "2024-Q2", *SIGNOFF_Q2]) == 0
    assert q(
        env,
        "SELECT accepted_exception_count, accepted_exceptions -> 0 ->> 'status'"
        " FROM audit.closed_periods WHERE period_label = '2024-Q2'",
    ) == [(1, "missing_settlement")]
    with pytest.raises(ClosedPeriodsChanged, match="closed then: 2024-Q1; now: 2024-Q1, 2024-Q2"):
        PublishStep().run(run)
    run.store.finish(error="ClosedPeriodsChanged")
    assert marts(env) == before


def test_late_change_to_the_last_closed_quarter_extends_the_run(q4):
    """Q1-Q3 closed, data to Q3: a late Q3 entry lands in 2024-Q4, which the run adds (`q4`
    closed Q3 and ran the late landing plus finance/revenue/late_q3.csv)."""
    env, result = q4, q4.result
    assert env.seen["close_q3"] == 0
    assert (result.start, result.end) == (date(2024, 1, 1), date(2025, 1, 1))
    rows = [r for r in q(env, RECON) if r[0] == "2024-Q4"]
    assert [r[:8] for r in rows] == [
        ("2024-Q4", "payable", False, None, None, None, None, "missing_settlement"),
        (
            "2024-Q4",
            "payable",
            True,
            D("100.00"),
            D("20.00"),
            D("0E-10"),
            D("-20.00"),
            "underpaid",
        ),
    ]
    assert rows[1][10:13] == (
        "2024-Q3",
        "2024-Q3: basis +100.00, expected +20.00, settled +0.00",
        "finance/revenue/late_q3.csv (new)",
    )
    assert q(env, "SELECT period_end FROM audit.runs WHERE run_id = %s", result.run_id) == [
        (date(2025, 1, 1),)
    ]


def test_the_close_dag_follows_the_same_rule(q4, copy):
    """orchestration.close as ledger_quarterly_close calls it (inside airflow_errors): 2024-Q4
    (a missing settlement, the adjustment of late Q3 revenue, and here a failed critical check
    of the run that published it) fails at once with close's message; with the params it
    closes, recorded as signed off by the DAG run."""
    from airflow.sdk.exceptions import AirflowFailException

    from inference_ledger import orchestration
    from inference_ledger.close import refusal_message

    env = copy(q4)
    ((run_id,),) = q(
        env,
        "SELECT run_id FROM audit.published_periods"
        " WHERE table_name = 'quarterly_summary' AND period_value = '2024-Q4'",
    )
    conn = connect(env.url)
    with conn, conn.cursor() as cur:  # a result as a publish run that failed it would record
        cur.execute(
            """INSERT INTO audit.dq_results (run_id, suite, expectation, column_name, severity,
                   success, observed_value, check_name)
               VALUES (%s, 'staging.revshare_reconciliation', 'expect_column_values_to_not_be_null',
                       'status', 'critical', false, '1', 'reconciliation_status_present')""",
            (run_id,),
        )
    conn.close()
    who = "airflow:ledger_quarterly_close/manual__2025-01-20T06:00:00+00:00"

    def dag_close(**params):
        with orchestration.airflow_errors():
            return orchestration.close("2024-Q4", closed_by=who, **params)

    with pytest.raises(AirflowFailException) as refused:
        dag_close(accept_exceptions=False, reason=None)
    assert str(refused.value) == (
        "period 2024-Q4 cannot be closed: it has 2 open reconciliation exceptions and 1 failed"
        " critical data-quality check\n"
        "  exception: PAY payable: missing_settlement, variance none (expected none,"
        " settled none, tolerance 1.00, due 2025-01-31)\n"
        "  exception: PAY payable (adjustment of 2024-Q3): underpaid, variance -20.00 USD"
        " (expected 20.00, settled 0.00)\n"
        "  failed critical check: staging.revshare_reconciliation"
        " expect_column_values_to_not_be_null on status (check reconciliation_status_present,"
        f" run {run_id}): observed 1\n"
        "fix them and publish again, or close it anyway with a recorded sign-off: ledger close"
        ' --period 2024-Q4 --accept-exceptions --reason "why they are accepted" (close DAG:'
        " params accept_exceptions=true and reason)"
    )
    assert str(refused.value) == str(refusal_message("2024-Q4", refused.value.__cause__.blockers))
    for params, message in (
        ({"accept_exceptions": True, "reason": None}, "param accept_exceptions needs param reason"),
        ({"accept_exceptions": True, "reason": " "}, "param accept_exceptions needs param reason"),
        ({"accept_exceptions": False, "reason": "x"}, "param reason goes with param accept_"),
    ):
        with pytest.raises(AirflowFailException, match=f"^ParamError: {message}"):
            dag_close(**params)
    assert q(env, "SELECT count(*) FROM audit.closed_periods WHERE period_label = '2024-Q4'") == [
        (0,)
    ]

    digest = dag_close(accept_exceptions=True, reason="Q4 figures signed off by the CFO")
    rows = q(
        env,
        "SELECT closed_by, snapshot_sha256, accepted_exception_count,"
        " accepted_dq_failure_count, accepted_dq_failures, acceptance_reason,"
        " jsonb_path_query_array(accepted_exceptions, '$[*].status')"
        " FROM audit.closed_periods WHERE period_label = '2024-Q4'",
    )
    dq = {
        "run_id": run_id,
        "suite": "staging.revshare_reconciliation",
        "expectation": "expect_column_values_to_not_be_null",
        "column_name": "status",
        "check_name": "reconciliation_status_present",
        "observed_value": "1",
    }
    assert rows == [
        (
            who,
            digest,
            2,
            1,
            [dq],
            "Q4 figures signed off by the CFO",
            ["missing_settlement", "underpaid"],
        )
    ]
    # Run again (a retry, a second trigger): already closed, the same snapshot, no new event.
    assert dag_close(accept_exceptions=False, reason=None) == digest
    assert q(
        env,
        "SELECT count(*) FROM audit.period_close_events WHERE period_label = '2024-Q4'",
    ) == [(1,)]
