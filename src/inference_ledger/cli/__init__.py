"""`ledger`: demo, run, report, close, reopen, db."""

from __future__ import annotations

import logging
import sys

from inference_ledger.cli.commands import _UsageError
from inference_ledger.cli.output import _COUNTS
from inference_ledger.cli.parser import build_parser
from inference_ledger.ingest.records import InputError

__all__ = ["_COUNTS", "build_parser", "main"]


def _database_error(exc: Exception) -> str | None:
    """One line for a malformed LEDGER_DATABASE_URL or an unreachable database (host and port,
    never the password); None for any other error."""
    import psycopg2
    from sqlalchemy.exc import ArgumentError

    from inference_ledger.settings import load_settings

    url = load_settings().database_url
    if isinstance(exc, ArgumentError) or (
        isinstance(exc, ValueError) and "not a PostgreSQL URL" in str(exc)
    ):
        return "LEDGER_DATABASE_URL is not a valid postgresql:// URL (see `ledger --help`)"
    if isinstance(exc, psycopg2.OperationalError):
        where = "the embedded Postgres"
        if url:
            from sqlalchemy.engine import make_url

            u = make_url(url)
            where = f"{u.host or u.query.get('host') or 'localhost'}:{u.port or 5432}"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if url and make_url(url).password:
            reason = reason.replace(make_url(url).password, "***")
        return f"cannot connect to the database at {where}: {reason}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    logging.basicConfig(
        level=logging.INFO if verbose and not quiet else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from inference_ledger import progress

    progress.configure(not quiet and (verbose or sys.stderr.isatty()))
    try:
        return args.func(args)
    except _UsageError as exc:
        print(f"ledger: {exc}", file=sys.stderr)
        return 2
    except InputError as exc:
        print(f"ledger: input error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the run is already recorded as failed in audit.runs
        from inference_ledger.quality import QualityGateFailed

        db_error = _database_error(exc)
        if db_error is not None:
            print(f"ledger: {db_error}", file=sys.stderr)
            return 2
        if isinstance(exc, ValueError):  # a request that cannot be honoured
            print(f"ledger: {exc}", file=sys.stderr)
            return 1

        if isinstance(exc, QualityGateFailed):
            print(f"ledger: {exc}", file=sys.stderr)
            return 3
        raise
