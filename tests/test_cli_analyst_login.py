"""`ledger db grant-login NAME`: a LOGIN role with a SCRAM-SHA-256 password, member of
ledger_analyst, that reads marts and nothing else (no audit, no staging, no writes)."""

from __future__ import annotations

import psycopg2
import pytest
from psycopg2 import errors

from inference_ledger import cli
from inference_ledger.db import connect, connect_params

NAME = "analyst_cli_test"
PASSWORD = "correct horse battery"


def _as_login(pg_url: str, password: str):
    params = connect_params(pg_url)
    params.update(user=NAME, password=password)
    return psycopg2.connect(**params)


@pytest.fixture
def login(pg_url, monkeypatch):
    monkeypatch.setenv("LEDGER_LOGIN_PASSWORD", PASSWORD)
    yield
    conn = connect(pg_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP ROLE IF EXISTS {NAME}")
    finally:
        conn.close()


def test_grant_login_creates_then_updates_a_scram_analyst(pg_url, login, capsys):
    assert cli.main(["db", "grant-login", NAME]) == 0
    assert capsys.readouterr().out == f"created login {NAME} (member of ledger_analyst)\n"
    assert cli.main(["db", "grant-login", NAME]) == 0
    assert capsys.readouterr().out == f"updated login {NAME} (member of ledger_analyst)\n"
    conn = connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT rolcanlogin, rolsuper, left(rolpassword, 14),"
                " pg_has_role(rolname, 'ledger_analyst', 'MEMBER')"
                " FROM pg_authid WHERE rolname = %s",
                (NAME,),
            )
            assert cur.fetchone() == (True, False, "SCRAM-SHA-256$", True)
        conn.commit()
    finally:
        conn.close()


def test_login_reads_marts_only(pg_url, login, capsys):
    assert cli.main(["db", "grant-login", NAME]) == 0
    conn = _as_login(pg_url, PASSWORD)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone() == (NAME,)
            cur.execute("SELECT count(*) >= 0 FROM marts.quarterly_summary")
            assert cur.fetchone() == (True,)
            # Open/closed state, freshness, data quality and quarantine, though the views
            # read `audit`, which the analyst may not read directly.
            for view, columns in (
                ("period_status", "period_label, is_closed, published_at, as_of, dq_warnings"),
                ("period_quarantine", "period_label, path, reason, row_count, amount"),
                ("period_data_quality", "period_label, suite, severity, success"),
                ("period_calendar", "month_label, fiscal_quarter_label"),
            ):
                cur.execute(f"SELECT count(*) >= 0 FROM (SELECT {columns} FROM marts.{view}) v")
                assert cur.fetchone() == (True,), view
            for statement in (
                "SELECT count(*) FROM audit.runs",
                "SELECT count(*) FROM staging.quarterly_summary",
                "DELETE FROM marts.quarterly_summary",
                "CREATE TABLE marts.mine (x int)",
            ):
                with pytest.raises(errors.InsufficientPrivilege):
                    cur.execute(statement)
    finally:
        conn.close()


def test_password_is_never_an_argument(pg_url, login, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["db", "grant-login", NAME, "--password", "x"])
    assert exit_.value.code == 2


def test_bad_names_and_short_passwords_refused(pg_url, login, monkeypatch, capsys):
    assert cli.main(["db", "grant-login", "Robert'); DROP"]) == 1
    assert "lower-case letters, digits and _ only" in capsys.readouterr().err
    monkeypatch.setenv("LEDGER_LOGIN_PASSWORD", "short")
    assert cli.main(["db", "grant-login", NAME]) == 1
    assert "at least 8 characters" in capsys.readouterr().err
    assert cli.main(["db", "grant-login"]) == 2
