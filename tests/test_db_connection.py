"""URL handling: SQLAlchemy URLs to libpq parameters, passwords never shown."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from inference_ledger.db import connect_params, database_url, redact, sqlalchemy_engine

TCP_URL = "postgresql+psycopg2://loader:p%40ss%3Aw0rd@db.example:6543/ledger?sslmode=require"


def test_tcp_url_becomes_libpq_params():
    params = connect_params(TCP_URL)
    assert params["user"] == "loader"
    assert params["password"] == "p@ss:w0rd"
    assert (params["host"], params["port"], params["dbname"]) == ("db.example", 6543, "ledger")
    assert params["sslmode"] == "require"
    assert params["options"] == "-c TimeZone=UTC"


def test_socket_directory_comes_from_the_host_query_parameter():
    params = connect_params("postgresql://postgres@/ledger?host=/tmp/sock%20dir&port=5432")
    assert params["host"] == "/tmp/sock dir"
    assert params["port"] == "5432"
    assert "password" not in params


def test_session_options_keep_the_callers_and_add_utc():
    params = connect_params("postgresql://u@h/db?options=-c%20search_path%3Dmarts")
    assert params["options"] == "-c search_path=marts -c TimeZone=UTC"


def test_passwords_are_redacted():
    assert "p@ss" not in redact(TCP_URL) and "***" in redact(TCP_URL)
    with pytest.raises(ValueError) as info:
        connect_params("mysql://loader:secret@h/db")
    assert "secret" not in str(info.value)


def test_configured_url_wins_and_starts_nothing(monkeypatch):
    monkeypatch.setenv("LEDGER_DATABASE_URL", TCP_URL)
    assert database_url() == TCP_URL


def test_engine_uses_psycopg2_and_utc_sessions(pg_url):
    plain = pg_url.replace("postgresql+psycopg2://", "postgresql://")
    engine = sqlalchemy_engine(plain)
    try:
        assert engine.dialect.driver == "psycopg2"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_setting('TimeZone')")).scalar() == "UTC"
            assert conn.execute(text("SELECT current_database()")).scalar() == "ledger"
    finally:
        engine.dispose()
