"""The private Postgres used when LEDGER_DATABASE_URL is unset: one server per LEDGER_HOME.

pgserver (bundled Postgres 16) does the heavy lifting: initdb with trust auth, `pg_ctl start`
detached from this process, a Unix socket only (no TCP), and, when run as root, an unprivileged
OS user `pgserver` that owns PGDATA because postgres refuses to run as root. The server outlives
the process that started it; later processes find it through PGDATA/postmaster.pid and reuse it.
Only `stop_embedded()` stops it.

The socket lives in PGDATA when `PGDATA/.s.PGSQL.5432` fits the 107-byte Unix-socket limit, else
pgserver uses `<user runtime dir>/python_PostgresServer/<hash of PGDATA>`; postmaster.pid records
which, and the URL is built from it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import time
import warnings
from pathlib import Path
from urllib.parse import quote

import psutil  # pgserver's own dependency
from psycopg2 import errors, sql

from inference_ledger.db.connection import connection
from inference_ledger.settings import Settings, load_settings

log = logging.getLogger(__name__)

DATABASE = "ledger"
SUPERUSER = "postgres"  # pgserver's initdb superuser

# (pgdata, postmaster pid) whose `ledger` database this process has already ensured.
_database_ready: set[tuple[Path, int]] = set()


def _pgserver():
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (pgserver then keeps its lock
    # under /tmp/runtime-<uid>); that is expected on servers and CI, so keep it out of the logs.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver.postgres_server as postgres_server
    return postgres_server


def ensure_embedded(settings: Settings | None = None) -> str:
    """Start the embedded server (or reuse the running one), create `ledger`, return its URL."""
    settings = settings or load_settings()
    pgdata = settings.pgdata_dir.resolve()
    info = _live_postmaster(pgdata) or _start(pgdata)
    if (pgdata, info.pid) not in _database_ready:
        _ensure_database(info)
        _database_ready.add((pgdata, info.pid))
    return _url(info, DATABASE)


def is_embedded_running(settings: Settings | None = None) -> bool:
    settings = settings or load_settings()
    return _live_postmaster(settings.pgdata_dir.resolve()) is not None


def stop_embedded(settings: Settings | None = None, *, timeout: float = 60) -> bool:
    """Stop the embedded server of LEDGER_HOME (fast shutdown); False if it was not running."""
    settings = settings or load_settings()
    info = _live_postmaster(settings.pgdata_dir.resolve())
    if info is None:
        return False
    # SIGINT is postgres' fast shutdown, what `pg_ctl stop -m fast` sends. Unlike pg_ctl run as
    # the server's OS user, a signal needs no traversable path to PGDATA (see _start).
    info.process.send_signal(signal.SIGINT)
    # Like pg_ctl, wait for postmaster.pid to go: postgres removes it last thing, while the
    # exited process itself may linger as a zombie until init gets round to reaping it.
    deadline = time.monotonic() + timeout
    while (info.pgdata / "postmaster.pid").exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded Postgres (pid {info.pid}) did not stop in {timeout}s")
        time.sleep(0.05)
    log.info("stopped the embedded Postgres in %s", info.pgdata)
    return True


def _read_postmaster(pgdata: Path):
    try:
        return _pgserver().PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):
        return None  # no file, or a starting server has not written all of it yet


def _serves(info, pgdata: Path) -> bool:
    """Whether postmaster.pid's pid is a postgres for this PGDATA, not a recycled pid."""
    if not info.is_running():
        return False
    try:
        return str(pgdata) in info.process.cmdline()  # started as `postgres -D <pgdata> ...`
    except psutil.Error:
        # Our server runs as us, or as `pgserver` under root: both readable. Anything else
        # (another user's process holding a recycled pid) is not it.
        return False


def _live_postmaster(pgdata: Path):
    info = _read_postmaster(pgdata)
    if info is None or info.status != "ready" or not _serves(info, pgdata):
        return None
    return info


def _start(pgdata: Path):
    ps = _pgserver()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with ps.PostgresServer._lock:  # the inter-process lock pgserver itself starts servers under
        _remove_stale_lock_files(pgdata)
    _forget_handle(ps, pgdata)
    # As root the server runs as the OS user `pgserver`, so pgserver adds o+rx to every parent
    # of PGDATA, then runs initdb and pg_ctl. Another process can take that back in between
    # (pytest resets /tmp/pytest-of-<user> to 0700 whenever a session starts); a second try
    # re-adds it.
    attempts = 2 if os.geteuid() == 0 else 1
    for attempt in range(1, attempts + 1):
        try:
            # cleanup_mode=None: keep the server running when this process exits, for the next.
            server = ps.get_server(pgdata, cleanup_mode=None)
            break
        except Exception as exc:
            _forget_handle(ps, pgdata)
            if attempt == attempts:
                raise RuntimeError(
                    f"could not start the embedded Postgres in {pgdata} (log: {pgdata / 'log'})"
                ) from exc
            log.warning("embedded Postgres did not start (%s); trying once more", exc)
    info = server.get_postmaster_info()
    _make_socket_dir_private(info, pgdata)
    log.info("embedded Postgres running: pgdata=%s socket_dir=%s", pgdata, info.socket_dir)
    return info


def _forget_handle(ps, pgdata: Path) -> None:
    # pgserver caches one handle per PGDATA per process, and returns it without checking; a
    # handle whose server stopped since, or failed to start, must go, with the exit hook that
    # would delete it from the cache a second time.
    handle = ps.PostgresServer._instances.pop(pgdata, None)
    if handle is not None:
        atexit.unregister(handle._cleanup)


def _remove_stale_lock_files(pgdata: Path) -> None:
    """Lock files naming a live pid that is not this PGDATA's postgres are left-overs.

    After a reboot or container restart the pid can belong to anything; after a crash it can
    be the unreaped zombie of the old server (a container's PID 1 may never reap it). Postgres
    takes either for a running server and refuses to start; pgserver takes it for ours.
    A dead pid needs nothing: postgres reclaims those lock files itself.
    """
    stale = _read_postmaster(pgdata)
    if stale is None or not stale.is_running() or _serves(stale, pgdata):
        return
    # Every postgres process works inside PGDATA. While a crashed server's children are still
    # exiting, keep postgres' own interlock (which these files are) in place.
    if any(p.info["cwd"] == str(pgdata) for p in psutil.process_iter(["cwd"])):
        return
    log.warning("removing stale lock files of %s (pid %s is not its server)", pgdata, stale.pid)
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    if stale.socket_dir is not None:
        (stale.socket_dir / f".s.PGSQL.{stale.port}.lock").unlink(missing_ok=True)


def _make_socket_dir_private(info, pgdata: Path) -> None:
    # Local connections are trusted, so whoever can reach the socket is superuser. PGDATA is
    # 0700; pgserver's fallback directory is 0777 as root, umask-default otherwise.
    socket_dir = info.socket_dir
    if socket_dir is None or socket_dir == pgdata:
        return
    try:
        if os.geteuid() == 0:  # root gets through anyway; the server user must too
            os.chown(socket_dir, pgdata.stat().st_uid, -1)
        socket_dir.chmod(0o700)
    except OSError as exc:
        log.warning("could not restrict socket directory %s: %s", socket_dir, exc)


def _url(info, database: str) -> str:
    if info.socket_dir is not None:
        host = quote(str(info.socket_dir), safe="/")
        return f"postgresql+psycopg2://{SUPERUSER}@/{database}?host={host}&port={info.port}"
    return f"postgresql+psycopg2://{SUPERUSER}@{info.hostname}:{info.port}/{database}"


def _ensure_database(info) -> None:
    # CREATE DATABASE cannot run inside a transaction.
    with connection(_url(info, "postgres"), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        # Another process may create it between our check and our CREATE.
        if cur.fetchone() is None:
            with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
