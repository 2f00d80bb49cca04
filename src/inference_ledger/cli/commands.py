"""The `ledger` subcommands: demo, run, report, close, reopen, db."""

from __future__ import annotations

import json
import time
from pathlib import Path

from inference_ledger.cli.output import (
    _print_inputs_handled,
    _print_outlook,
    _print_run,
    _print_summary,
    _run_json,
    _write_reports,
)


class _UsageError(Exception):
    """A command line that cannot be honoured as given: exit 2, like argparse's own errors."""


def _has_inputs(landing: Path) -> bool:
    """Whether discovery (the ingest's own) finds an export run, a usage page or a finance
    feed file: the same test the ingest stops on, made before Spark or a run record exists."""
    from inference_ledger.ingest import exports, finance, usage

    return bool(
        exports.discover_runs(landing)
        or usage.usage_files(landing)
        or any(finance.feed_files(landing, feed) for feed in finance.FEEDS)
    )


def cmd_demo(args) -> int:
    from inference_ledger import progress, spark
    from inference_ledger.pipeline import run_pipeline
    from inference_ledger.sample import generate_landing
    from inference_ledger.settings import load_settings

    settings = load_settings()
    landing = Path(args.landing) if args.landing else settings.landing_dir
    t0 = time.monotonic()
    spark.start_in_background()  # the JVM starts while the sample is generated
    # Every deliberate input fault on: the run below shows each one handled.
    summary = generate_landing(
        landing,
        seed=args.seed,
        scale=args.scale,
        billing_faults=True,
        usage_conflicts=True,
        statement_chains=True,
        contract_changes=True,
        commitments=True,
    )
    print(
        f"generated sample landing data in {landing} ({summary.files} files) in {time.monotonic() - t0:.1f}s"
    )
    result = run_pipeline(landing, command="demo", as_of=args.as_of)
    _print_run(result)
    print()
    _print_inputs_handled(result.run_id, settings.lake_dir)
    print()
    _print_summary()
    print()
    _print_outlook()
    reports = _write_reports(settings.reports_dir)
    progress.stage("report", f"{len(reports)} periods")
    print(
        f"\nreports: {settings.reports_dir / 'index.html'} ({len(reports)} periods, quarters and years)"
    )
    print(f"done in {time.monotonic() - t0:.0f}s")
    return 0


def cmd_run(args) -> int:
    from inference_ledger.ingest.remote import local_landing
    from inference_ledger.pipeline import run_pipeline
    from inference_ledger.settings import load_settings

    landing = local_landing(args.landing, load_settings().home)
    if not _has_inputs(landing):
        from inference_ledger.ingest.landing import nothing_to_ingest

        raise nothing_to_ingest(landing)  # exit 2 below, one line
    result = run_pipeline(
        landing,
        args.start,
        args.end,
        command="run",
        as_of=args.as_of,
        incremental=not args.full,
    )
    if args.json:
        print(json.dumps(_run_json(result)))
    else:
        _print_run(result)
    return 0


def cmd_report(args) -> int:
    from inference_ledger import progress
    from inference_ledger.db import connection, database_url
    from inference_ledger.report import write_period_report
    from inference_ledger.settings import load_settings

    out = Path(args.out) if args.out else load_settings().reports_dir
    with connection(database_url()) as conn:
        written = write_period_report(conn, args.period, out)
    progress.stage("report", str(written))
    if args.json:
        files = {"report": str(written), "index": str(out / "index.html")}
        print(json.dumps({"period": args.period, "files": files}))
    else:
        print(written)
        print(out / "index.html")
    return 0


def cmd_close(args) -> int:
    from inference_ledger.close import (
        SignoffUsageError,
        blocker_summary,
        close_period,
        signoff_reason,
    )

    try:  # refused before the database: a mistyped sign-off costs nothing
        reason = signoff_reason(args.accept_exceptions, args.reason)
    except SignoffUsageError as exc:
        raise _UsageError(f"close: {exc}") from exc
    closed = close_period(
        args.period, closed_by=args.by, accept_exceptions=args.accept_exceptions, reason=reason
    )
    print(f"closed {closed.period}: snapshot sha256 {closed.snapshot_sha256}")
    if closed.accepted:
        print(
            f"signed off by {closed.closed_by}, accepting {blocker_summary(closed.accepted)}:"
            f" {closed.reason}"
        )
    return 0


def cmd_reopen(args) -> int:
    from inference_ledger.close import reopen_period

    reopen_period(args.period, args.reason, reopened_by=args.by)
    print(f"reopened {args.period}: the next run republishes it; its adjustments are recomputed")
    return 0


def _psql_url(url: str) -> str:
    """The libpq form (postgresql://...) of a SQLAlchemy URL, password included: what psql takes."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _grant_login(name: str) -> int:
    from inference_ledger.db import connection, database_url
    from inference_ledger.db.logins import grant_login, read_password

    password = read_password()
    with connection(database_url()) as conn:
        created = grant_login(conn, name, password)
        conn.commit()
    print(f"{'created' if created else 'updated'} login {name} (member of ledger_analyst)")
    return 0


def cmd_db(args) -> int:
    from inference_ledger.db import database_url, migrate, redact, stop_embedded

    if args.action == "grant-login":
        if not args.name:
            raise _UsageError("db grant-login needs the login NAME")
        return _grant_login(args.name)
    if args.name:
        raise _UsageError(f"db {args.action} takes no NAME")
    if args.psql and args.action != "url":
        raise _UsageError("--psql goes with db url")
    if args.action == "stop":
        print("stopped" if stop_embedded() else "embedded Postgres was not running")
    elif args.action == "migrate":
        applied = migrate(database_url())
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    elif args.psql:
        print(_psql_url(database_url()))
    else:
        print(redact(database_url()))
    return 0
