"""The embedded server: one per LEDGER_HOME, reused across processes, surviving its starter."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
from sqlalchemy.engine import make_url

from inference_ledger.db import connect, database_url, ensure_embedded, stop_embedded
from inference_ledger.db.embedded import is_embedded_running
from inference_ledger.settings import Settings

# Starts (or reuses) the server, prints URL, postmaster start time and pid, then dies by SIGKILL
# so that no exit hook of this process gets a chance to touch the server.
CHILD = """
import os, pathlib, signal
from inference_ledger.db import connect, database_url
url = database_url()
cur = connect(url).cursor()
cur.execute("SELECT pg_postmaster_start_time()::text")
pid_file = pathlib.Path(os.environ["LEDGER_HOME"], "pgdata", "postmaster.pid")
print(url, cur.fetchone()[0], pid_file.read_text().split()[0], sep="\\n", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _run_child(home: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "LEDGER_DATABASE_URL"}
    env["LEDGER_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -9, done.stderr
    return done.stdout.splitlines()


def _postmasters(pgdata: Path) -> list[int]:
    return [
        p.pid
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and str(pgdata) in (p.info["cmdline"] or [])
    ]


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def test_url_names_the_ledger_database_on_a_private_socket(pg_url, ledger_home):
    url = make_url(pg_url)
    assert url.drivername == "postgresql+psycopg2"
    assert url.database == "ledger"
    assert url.password is None  # local trust auth; nothing secret in the URL
    socket = Path(url.query["host"]) / f".s.PGSQL.{url.query['port']}"
    assert socket.is_socket()
    assert (ledger_home / "pgdata" / "PG_VERSION").exists()
    assert "LEDGER_DATABASE_URL" not in os.environ
    assert database_url() == pg_url


def test_second_process_reuses_the_server_and_its_death_leaves_it_running(pg_url, pg_conn):
    pgdata = Path(os.environ["LEDGER_HOME"]) / "pgdata"
    cur = pg_conn.cursor()
    cur.execute("SELECT pg_postmaster_start_time()::text")
    started = cur.fetchone()[0]
    pid = _postmaster_pid(pgdata)

    child_url, child_started, child_pid = _run_child(pgdata.parent)

    assert (child_url, child_started, int(child_pid)) == (pg_url, started, pid)
    cur.execute("SELECT pg_postmaster_start_time()::text")
    assert cur.fetchone()[0] == started
    assert _postmasters(pgdata) == [pid]


def _scalar(url, query):
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchone()[0]
    finally:
        conn.close()


def _wait_until_nothing_runs_in(pgdata: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while any(p.info["cwd"] == str(pgdata) for p in psutil.process_iter(["cwd"])):
        assert time.monotonic() < deadline, "the killed server's children did not exit"
        time.sleep(0.05)


def test_deep_home_killed_processes_and_stale_lock_files(tmp_path_factory):
    # Deeper than a Unix socket path allows (107 bytes), as CI and macOS temp dirs can be.
    home = tmp_path_factory.mktemp("deep") / ("d" * 60) / ("e" * 60)
    settings = Settings(home=home, database_url=None, spark_master="local[1]")
    pgdata = home / "pgdata"
    socket_dir = None
    try:
        # The process that started the server is killed: the server stays and is reused as is.
        child_url, _, child_pid = _run_child(home)
        url = ensure_embedded(settings)
        assert url == child_url
        assert _postmaster_pid(pgdata) == int(child_pid)
        socket_dir = Path(make_url(url).query["host"])
        assert socket_dir != pgdata and len(str(socket_dir / ".s.PGSQL.5432")) <= 107
        assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700  # trust auth: keep it private
        assert _scalar(url, "SELECT current_database()") == "ledger"

        # The server itself is killed: the next call starts a new one (even while the dead
        # postmaster lingers as a zombie nobody has reaped yet).
        os.kill(int(child_pid), signal.SIGKILL)
        _wait_until_nothing_runs_in(pgdata)
        assert ensure_embedded(settings) == url
        assert _postmaster_pid(pgdata) != int(child_pid)
        assert _scalar(url, "SELECT count(*) FROM pg_database WHERE datname = 'ledger'") == 1

        assert stop_embedded(settings) is True
        assert not is_embedded_running(settings) and stop_embedded(settings) is False

        # After a reboot postmaster.pid can name a live pid that is not postgres at all.
        impostor = subprocess.Popen(["sleep", "60"])
        try:
            lines = [str(impostor.pid), str(pgdata), "0", "5432", str(socket_dir), "", "0 0"]
            (pgdata / "postmaster.pid").write_text("\n".join([*lines, "ready"]) + "\n")
            assert ensure_embedded(settings) == url
            assert _postmaster_pid(pgdata) != impostor.pid
            assert _scalar(url, "SELECT 1") == 1
        finally:
            impostor.kill()
            impostor.wait()
    finally:
        stop_embedded(settings)
        if socket_dir is not None:  # the fallback directory lives outside the test's tmp dir
            shutil.rmtree(socket_dir, ignore_errors=True)
    assert _postmasters(pgdata) == []
