"""`ledger`'s command line: the subcommands, their options and the exit codes."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from inference_ledger.cli.commands import (
    cmd_close,
    cmd_db,
    cmd_demo,
    cmd_reopen,
    cmd_report,
    cmd_run,
)
from inference_ledger.periods import Quarter

DESCRIPTION = "`ledger`: demo, run, report, close, reopen, db."


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def _period(value: str) -> str:
    try:
        return Quarter.parse(value).label
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _landing(value: str) -> str:
    from inference_ledger.ingest.remote import is_remote

    if is_remote(value):
        return value  # an object store: synced into a local mirror by `run`
    # Refused before a run is recorded or Spark starts: a typo costs nothing.
    if not Path(value).is_dir():
        raise argparse.ArgumentTypeError(
            f"landing folder {value} does not exist or is not a folder"
        )
    return value


def _report_period(value: str) -> str:
    from inference_ledger.report import parse_report_period

    try:
        return parse_report_period(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


EPILOG = """settings (environment):
  LEDGER_HOME            where the embedded Postgres, lake, reports and landing live (./var)
  LEDGER_DATABASE_URL    SQLAlchemy URL of an external Postgres (unset: the embedded one)
  LEDGER_SPARK_MASTER    Spark master (local[*])
  LEDGER_LAKE_URI        lake root, any Hadoop-compatible URI ($LEDGER_HOME/lake)
  LEDGER_SHUFFLE_PARTITIONS  Spark shuffle partitions (4)
  LEDGER_SPARK_DRIVER_MEMORY Spark driver memory (2g)
  LEDGER_SPARK_JAVA_OPTIONS  JVM options added to the Spark driver's and executors' (none)
  LEDGER_SPARK_CLASS_ARCHIVE the Spark JVMs' class-data archive, a path or off (make setup's)
  LEDGER_SPARK_CODEGEN   Spark code generation: auto (by the bytes a step reads), on, off (auto)
  LEDGER_SPARK_PAGE_SIZE Spark's memory page, spark.buffer.pageSize, e.g. 1m (Spark's own)
  LEDGER_LOGIN_PASSWORD  password for `ledger db grant-login` (else stdin or a prompt)
  LEDGER_DATA_DOCS_KEEP_RUNS  Data Docs sites kept under $LEDGER_HOME/data_docs (30; 0 keeps all)

exit codes:
  0  success
  1  a request that cannot be honoured (e.g. closing a closed period, or one with open
     reconciliation exceptions or failed critical checks without --accept-exceptions);
     an unexpected error
  2  usage, configuration or input error: bad option, landing with nothing to ingest,
     malformed LEDGER_DATABASE_URL, unreachable database, bad input file, billing
     month(s) not loaded (the run is recorded as failed)
  3  a data-quality gate failed (the run is recorded as failed, nothing published)
"""


def _common() -> argparse.ArgumentParser:
    # Accepted before and after the subcommand; SUPPRESS keeps a subcommand's default from
    # overriding a flag given before it.
    c = argparse.ArgumentParser(add_help=False)
    c.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="info logging; progress even when stderr is not a terminal")  # fmt: skip
    c.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress lines and no info logging")  # fmt: skip
    return c


def build_parser() -> argparse.ArgumentParser:
    from inference_ledger import __version__

    common = _common()
    p = argparse.ArgumentParser(
        prog="ledger",
        description=DESCRIPTION,
        epilog=EPILOG,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"ledger {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def add_parser(name, **kw):
        return sub.add_parser(name, parents=[common], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter, **kw)  # fmt: skip

    for add in (_add_demo, _add_run, _add_report, _add_close, _add_reopen, _add_db):
        add(add_parser)
    return p


def _add_demo(add_parser) -> None:
    d = add_parser(
        "demo", help="generate sample data, run the pipeline, print the quarterly summary"
    )
    d.add_argument(
        "--landing", help="where to write the sample landing data (default $LEDGER_HOME/landing)"
    )
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--scale", type=float, default=1.0)
    d.add_argument(
        "--as-of", type=_date, default=None, help="date statuses are judged at (default today)"
    )
    d.set_defaults(func=cmd_demo)


def _add_run(add_parser) -> None:
    r = add_parser("run", help="ingest, aggregate, reconcile, audit and publish a landing folder")
    r.add_argument("--landing", required=True, type=_landing)
    r.add_argument("--start", type=_date, help="first day (inclusive); default: from the data")
    r.add_argument("--end", type=_date, help="last day (exclusive); default: from the data")
    r.add_argument("--as-of", type=_date, default=None)
    r.add_argument(
        "--full",
        action="store_true",
        help="re-read every billing file, even those a succeeded run already ingested",
    )
    r.add_argument("--json", action="store_true", help="one JSON object on stdout, nothing else")
    r.set_defaults(func=cmd_run)


def _add_report(add_parser) -> None:
    rep = add_parser(
        "report", help="write the HTML and CSV report of a quarter (2024-Q1) or a year (2024)"
    )
    rep.add_argument("--period", required=True, type=_report_period)
    rep.add_argument("--out")
    rep.add_argument("--json", action="store_true", help="the files written, as JSON on stdout")
    rep.set_defaults(func=cmd_report)


def _add_close(add_parser) -> None:
    c = add_parser(
        "close",
        help="sign off and freeze a period: snapshot its published figures with a checksum;"
        " refused while it has open reconciliation exceptions or failed critical checks"
        " unless they are accepted",
    )
    c.add_argument("--period", required=True, type=_period)
    c.add_argument("--by", default=None, help="who closes it (default: the OS user)")
    c.add_argument(
        "--accept-exceptions",
        action="store_true",
        help="close even with open reconciliation exceptions or failed critical data-quality"
        " checks; what is accepted is recorded with the reason, who and when (needs --reason)",
    )
    c.add_argument(
        "--reason",
        default=None,
        help="with --accept-exceptions: why they are accepted (kept in audit)",
    )
    c.set_defaults(func=cmd_close)


def _add_reopen(add_parser) -> None:
    ro = add_parser(
        "reopen",
        help="reopen a closed period (recorded with who, when and why); the next run republishes it",
    )
    ro.add_argument("--period", required=True, type=_period)
    ro.add_argument("--reason", required=True, help="why it is reopened (kept in audit)")
    ro.add_argument("--by", default=None, help="who reopens it (default: the OS user)")
    ro.set_defaults(func=cmd_reopen)


def _add_db(add_parser) -> None:
    db = add_parser(
        "db",
        help="the database: print its URL (starting the embedded one), migrate, stop,"
        " grant-login NAME (an analyst login)",
    )
    db.add_argument("action", choices=["url", "migrate", "stop", "grant-login"])
    db.add_argument("name", nargs="?", help="grant-login: the login role to create or update")
    db.add_argument(
        "--psql", action="store_true", help="url: the libpq URL psql accepts, password included"
    )
    db.set_defaults(func=cmd_db)
