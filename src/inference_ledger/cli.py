"""`ledger`: demo, run, report, close, reopen, db."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import date
from pathlib import Path

from inference_ledger.ingest.records import InputError
from inference_ledger.periods import Quarter


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


def _has_inputs(landing: Path) -> bool:
    """Whether discovery (the ingest's own) finds an export run, a usage page or a finance
    feed file: the same test the ingest stops on, made before Spark or a run record exists."""
    from inference_ledger.ingest import exports, finance, usage

    return bool(
        exports.discover_runs(landing)
        or usage.usage_files(landing)
        or any(finance.feed_files(landing, feed) for feed in finance.FEEDS)
    )


def _report_period(value: str) -> str:
    from inference_ledger.report import parse_report_period

    try:
        return parse_report_period(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _print_run(result) -> None:
    print(
        f"run {result.run_id}: {result.start} .. {result.end} (exclusive); {result.files} files, "
        f"{result.rows_read} rows read = {result.rows_loaded} loaded + {result.rows_quarantined} quarantined + "
        f"{result.rows_superseded} superseded + {result.rows_deduplicated} deduplicated; "
        f"published {sum(result.published.rows.values())} mart rows after {result.published.checks} "
        f"data-quality checks ({result.published.warnings} warnings)"
    )
    if result.file_warnings:
        print(f"{len(result.file_warnings)} input file(s) need a look:")
        for line in result.file_warnings:
            print(f"  warning: {line}")


def _print_summary() -> None:
    from inference_ledger.db import connect, database_url
    from inference_ledger.report import fetch_summary, summary_text

    conn = connect(database_url())
    try:
        print(summary_text(fetch_summary(conn)))
    finally:
        conn.close()


# The latest published month of each commitment, the latest basis of each capped agreement.
_LATEST_BURNDOWN = """
SELECT DISTINCT ON (commitment_id) commitment_id, counterparty, month_start, term_end,
       commitment_usd, cumulative_consumed_usd, consumed_ratio, term_elapsed_ratio,
       projected_variance_usd, projection_status
FROM marts.commitment_burndown ORDER BY commitment_id, month_start DESC"""
_LATEST_CAP = """
SELECT DISTINCT ON (agreement_id, direction) agreement_id, direction, basis_period_label, cap_usd,
       cap_used_usd, growth_ratio, cap_reached_period_label, projected_cap_period_label,
       projected_cap_period_label_early, projected_cap_period_label_late,
       horizon_end_period_label
FROM marts.cap_projection ORDER BY agreement_id, direction, basis_period_start DESC"""


def outlook_lines(burndown: list[dict], caps: list[dict]) -> list[str]:
    """One line per commitment and per capped agreement: where it stands (actual) and the
    projection, labelled as one."""
    from inference_ledger.report.render import dollars_m, pct

    out = []
    for r in burndown:
        variance = r["projected_variance_usd"]
        projected = (
            "no run-rate yet"
            if variance is None
            else f"{r['projection_status']} of {dollars_m(abs(variance))} at the term end"
            f" {r['term_end']}"
        )
        out.append(
            f"commitment {r['commitment_id']} ({r['counterparty']}):"
            f" {dollars_m(r['cumulative_consumed_usd'])} of {dollars_m(r['commitment_usd'])}"
            f" consumed by {r['month_start']:%Y-%m} ({pct(r['consumed_ratio'])} of the"
            f" commitment, {pct(r['term_elapsed_ratio'])} of the term); PROJECTION at the"
            f" trailing run-rate: {projected}"
        )
    for r in caps:
        head = (
            f"cap {r['agreement_id']} ({r['direction']}): {dollars_m(r['cap_used_usd'])} of"
            f" {dollars_m(r['cap_usd'])} used by {r['basis_period_label']}; "
        )
        if r["cap_reached_period_label"]:
            out.append(head + f"reached in {r['cap_reached_period_label']}")
        elif r["projected_cap_period_label"]:
            out.append(
                head + f"PROJECTION at {r['growth_ratio']:.4f}x a quarter (trailing four"
                f" quarters' mean growth): reached in {r['projected_cap_period_label']} (band"
                f" {r['projected_cap_period_label_early']} .."
                f" {r['projected_cap_period_label_late'] or 'beyond the horizon'})"
            )
        else:
            out.append(
                head
                + f"PROJECTION: not reached by {r['horizon_end_period_label'] or 'the term end'}"
            )
    return out


def _print_outlook() -> None:
    from inference_ledger.db import connect, database_url
    from inference_ledger.report.queries import Query

    conn = connect(database_url())
    try:
        burndown = Query("latest_burndown", _LATEST_BURNDOWN).run(conn)
        caps = Query("latest_cap", _LATEST_CAP).run(conn)
        conn.commit()
    finally:
        conn.close()
    print("\n".join(outlook_lines(burndown, caps)))


def _write_reports(out: Path, periods: list[str] | None = None) -> list[Path]:
    """The given periods' reports (default: every published quarter and year) + the index."""
    from inference_ledger.db import connect, database_url
    from inference_ledger.report import write_reports

    conn = connect(database_url())
    try:
        return write_reports(conn, out, periods)
    finally:
        conn.close()


def _rate_runs(rows: list[tuple]) -> str:
    """(period_label, rate) in period order as `rate in first..last` runs."""
    runs: list[list] = []
    for label, rate in rows:
        if runs and runs[-1][0] == rate:
            runs[-1][2] = label
        else:
            runs.append([rate, label, label])
    return ", ".join(
        f"{rate.normalize():f} in {a}" + (f"..{b}" if b != a else "") for rate, a, b in runs
    )


def _print_inputs_handled(run_id: str, lake_dir: Path) -> None:
    """What the run did with each source's rows (audit.input_files) and which contract terms
    set the rate of each quarter (lake contract_terms, marts.revshare_reconciliation)."""
    from inference_ledger import lake
    from inference_ledger.db import connect, database_url
    from inference_ledger.spark import get_spark

    conn = connect(database_url())
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT source, count(*), sum(rows_read), sum(rows_loaded),"
                " sum(rows_deduplicated), sum(rows_superseded), sum(rows_quarantined)"
                " FROM audit.input_files WHERE run_id = %s GROUP BY source ORDER BY source",
                (run_id,),
            )
            sources = cur.fetchall()
            cur.execute(
                "SELECT direction, agreement_id, period_label, rate"
                " FROM marts.revshare_reconciliation WHERE NOT is_adjustment AND rate IS NOT NULL"
                " ORDER BY direction, agreement_id, period_label"
            )
            applied: dict[tuple, list] = {}
            for direction, agreement, label, rate in cur.fetchall():
                applied.setdefault((direction, agreement), []).append((label, rate))
        conn.commit()
    finally:
        conn.close()
    head = (
        f"{'inputs handled':<22}{'files':>6}{'read':>10}{'loaded':>10}"
        f"{'deduplicated':>14}{'superseded':>12}{'quarantined':>13}"
    )
    print(head)
    for source, files, *counts in sources:
        print(f"  {source:<20}{files:>6}" + "".join(f"{int(c):>{w}}" for c, w in
              zip(counts, (10, 10, 14, 12, 13), strict=True)))  # fmt: skip
    print(
        "  (usage: deduplicated = redelivered bucket results, superseded = older conflicting"
        " pulls; revenue: lower entry_versions; settlements: statements replaced by a"
        " correction)"
    )
    terms = (
        lake.read_table(get_spark(), lake_dir, "contract_terms")
        .orderBy("direction", "agreement_id", "effective_from")
        .collect()
    )
    print("contract terms:")
    for t in terms:
        until = t["effective_to"] or "open"
        print(
            f"  {t['direction']:<11}{t['agreement_id']:<19} rate {t['rate'].normalize():f}"
            f" from {t['effective_from']} to {until} (exclusive)"
        )
    for (direction, agreement), rows in sorted(applied.items()):
        print(f"  {direction} {agreement} rate applied: {_rate_runs(rows)}")


def cmd_demo(args) -> int:
    from inference_ledger import progress
    from inference_ledger.pipeline import run_pipeline
    from inference_ledger.sample import generate_landing
    from inference_ledger.settings import load_settings

    settings = load_settings()
    landing = Path(args.landing) if args.landing else settings.landing_dir
    t0 = time.monotonic()
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


def _run_json(result) -> dict:
    from inference_ledger.db import connect, database_url

    conn = connect(database_url())
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT split_part(source, '.', 1), count(*), sum(rows_read), sum(rows_loaded),"
                " sum(rows_quarantined), sum(rows_superseded), sum(rows_deduplicated)"
                " FROM audit.input_files WHERE run_id = %s GROUP BY 1 ORDER BY 1",
                (result.run_id,),
            )
            sources = {
                src: dict(zip(("files", *_COUNTS), map(int, rest), strict=True))
                for src, *rest in cur.fetchall()
            }
            cur.execute("SELECT status FROM audit.runs WHERE run_id = %s", (result.run_id,))
            status = cur.fetchone()[0]
        conn.commit()
    finally:
        conn.close()
    return {
        "run_id": result.run_id,
        "range": {"start": str(result.start), "end": str(result.end), "end_is_exclusive": True},
        "status": status,
        "files": result.files,
        "rows": {k: getattr(result, f"rows_{k}") for k in _COUNTS},
        "sources": sources,
        "published_rows": dict(sorted(result.published.rows.items())),
        "checks": result.published.checks,
        "warnings": result.published.warnings,
        "file_warnings": list(result.file_warnings),
    }


_COUNTS = ("read", "loaded", "quarantined", "superseded", "deduplicated")


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
    from inference_ledger.db import connect, database_url
    from inference_ledger.report import write_period_report
    from inference_ledger.settings import load_settings

    out = Path(args.out) if args.out else load_settings().reports_dir
    conn = connect(database_url())
    try:
        written = write_period_report(conn, args.period, out)
    finally:
        conn.close()
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
    from inference_ledger.db import connect, database_url
    from inference_ledger.db.logins import grant_login, read_password

    password = read_password()
    conn = connect(database_url())
    try:
        created = grant_login(conn, name, password)
        conn.commit()
    finally:
        conn.close()
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


class _UsageError(Exception):
    """A command line that cannot be honoured as given: exit 2, like argparse's own errors."""


EPILOG = """settings (environment):
  LEDGER_HOME            where the embedded Postgres, lake, reports and landing live (./var)
  LEDGER_DATABASE_URL    SQLAlchemy URL of an external Postgres (unset: the embedded one)
  LEDGER_SPARK_MASTER    Spark master (local[*])
  LEDGER_LAKE_URI        lake root, any Hadoop-compatible URI ($LEDGER_HOME/lake)
  LEDGER_SHUFFLE_PARTITIONS  Spark shuffle partitions (4)
  LEDGER_SPARK_DRIVER_MEMORY Spark driver memory (2g)
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
        description=__doc__,
        epilog=EPILOG,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"ledger {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def add_parser(name, **kw):
        return sub.add_parser(name, parents=[common], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter, **kw)  # fmt: skip

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

    rep = add_parser(
        "report", help="write the HTML and CSV report of a quarter (2024-Q1) or a year (2024)"
    )
    rep.add_argument("--period", required=True, type=_report_period)
    rep.add_argument("--out")
    rep.add_argument("--json", action="store_true", help="the files written, as JSON on stdout")
    rep.set_defaults(func=cmd_report)

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

    ro = add_parser(
        "reopen",
        help="reopen a closed period (recorded with who, when and why); the next run republishes it",
    )
    ro.add_argument("--period", required=True, type=_period)
    ro.add_argument("--reason", required=True, help="why it is reopened (kept in audit)")
    ro.add_argument("--by", default=None, help="who reopens it (default: the OS user)")
    ro.set_defaults(func=cmd_reopen)
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
    return p


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


if __name__ == "__main__":
    sys.exit(main())
