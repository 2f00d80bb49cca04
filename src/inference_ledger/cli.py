"""`ledger`: demo, run, report, close, reopen."""

from __future__ import annotations

import argparse
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
    reports = _write_reports(settings.reports_dir)
    print(
        f"\nreports: {settings.reports_dir / 'index.html'} ({len(reports)} periods, quarters and years)"
    )
    print(f"done in {time.monotonic() - t0:.0f}s")
    return 0


def cmd_run(args) -> int:
    from inference_ledger.pipeline import run_pipeline

    result = run_pipeline(
        Path(args.landing),
        args.start,
        args.end,
        command="run",
        as_of=args.as_of,
        incremental=not args.full,
    )
    _print_run(result)
    return 0


def cmd_report(args) -> int:
    from inference_ledger.db import connect, database_url
    from inference_ledger.report import write_period_report
    from inference_ledger.settings import load_settings

    out = Path(args.out) if args.out else load_settings().reports_dir
    conn = connect(database_url())
    try:
        print(write_period_report(conn, args.period, out))
    finally:
        conn.close()
    print(out / "index.html")
    return 0


def cmd_close(args) -> int:
    from inference_ledger.close import close_period

    checksum = close_period(args.period, closed_by=args.by)
    print(f"closed {args.period}: snapshot sha256 {checksum}")
    return 0


def cmd_reopen(args) -> int:
    from inference_ledger.close import reopen_period

    reopen_period(args.period, args.reason, reopened_by=args.by)
    print(f"reopened {args.period}: the next run republishes it; its adjustments are recomputed")
    return 0


def cmd_db(args) -> int:
    from inference_ledger.db import database_url, migrate, redact, stop_embedded

    if args.action == "stop":
        print("stopped" if stop_embedded() else "embedded Postgres was not running")
    elif args.action == "migrate":
        applied = migrate(database_url())
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    else:
        print(redact(database_url()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ledger", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser(
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

    r = sub.add_parser(
        "run", help="ingest, aggregate, reconcile, audit and publish a landing folder"
    )
    r.add_argument("--landing", required=True, type=_landing)
    r.add_argument("--start", type=_date, help="first day (inclusive); default: from the data")
    r.add_argument("--end", type=_date, help="last day (exclusive); default: from the data")
    r.add_argument("--as-of", type=_date, default=None)
    r.add_argument(
        "--full",
        action="store_true",
        help="re-read every billing file, even those a succeeded run already ingested",
    )
    r.set_defaults(func=cmd_run)

    rep = sub.add_parser(
        "report", help="write the HTML and CSV report of a quarter (2024-Q1) or a year (2024)"
    )
    rep.add_argument("--period", required=True, type=_report_period)
    rep.add_argument("--out")
    rep.set_defaults(func=cmd_report)

    c = sub.add_parser(
        "close", help="freeze a period: snapshot its published figures with a checksum"
    )
    c.add_argument("--period", required=True, type=_period)
    c.add_argument("--by", default=None, help="who closes it (default: the OS user)")
    c.set_defaults(func=cmd_close)

    ro = sub.add_parser(
        "reopen",
        help="reopen a closed period (recorded with who, when and why); the next run republishes it",
    )
    ro.add_argument("--period", required=True, type=_period)
    ro.add_argument("--reason", required=True, help="why it is reopened (kept in audit)")
    ro.add_argument("--by", default=None, help="who reopens it (default: the OS user)")
    ro.set_defaults(func=cmd_reopen)
    db = sub.add_parser(
        "db", help="the database: print its URL (starting the embedded one), migrate, stop"
    )
    db.add_argument("action", choices=["url", "migrate", "stop"])
    db.set_defaults(func=cmd_db)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except InputError as exc:
        print(f"ledger: input error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # a request that cannot be honoured, e.g. closing a closed period
        print(f"ledger: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the run is already recorded as failed in audit.runs
        from inference_ledger.quality import QualityGateFailed

        if isinstance(exc, QualityGateFailed):
            print(f"ledger: {exc}", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
