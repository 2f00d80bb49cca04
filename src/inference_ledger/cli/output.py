"""What the `ledger` commands print: the run line, the quarterly summary, the outlook, the inputs
handled, the JSON of `ledger run --json`."""

from __future__ import annotations

from pathlib import Path


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
    from inference_ledger.db import connection, database_url
    from inference_ledger.report import fetch_summary, summary_text

    with connection(database_url()) as conn:
        print(summary_text(fetch_summary(conn)))


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
    from inference_ledger.db import connection, database_url
    from inference_ledger.report.queries import Query

    with connection(database_url()) as conn:
        burndown = Query("latest_burndown", _LATEST_BURNDOWN).run(conn)
        caps = Query("latest_cap", _LATEST_CAP).run(conn)
        conn.commit()
    print("\n".join(outlook_lines(burndown, caps)))


def _write_reports(out: Path, periods: list[str] | None = None) -> list[Path]:
    """The given periods' reports (default: every published quarter and year) + the index."""
    from inference_ledger.db import connection, database_url
    from inference_ledger.report import write_reports

    with connection(database_url()) as conn:
        return write_reports(conn, out, periods)


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
    from inference_ledger.db import connection, database_url
    from inference_ledger.spark import get_spark

    with connection(database_url()) as conn:
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


def _run_json(result) -> dict:
    from inference_ledger.db import connection, database_url

    with connection(database_url()) as conn:
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
