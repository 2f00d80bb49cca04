"""The audit behind a quarter page, as data for quarter.html.j2: its close state and history,
the run that published it (with its Data Docs), the data-quality results, the input files and
the rows quarantined from them. From `audit` (via the close module and report queries)."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

from inference_ledger.report import queries as Q
from inference_ledger.report.render import Col, integer, money, plain, sql, table

DQ_COLS = [
    Col("Suite", "suite"),
    Col("Expectation", "expectation"),
    Col("Column", "column_name"),
    Col("Severity", "severity"),
    Col("Result", "success", lambda v: "passed" if v else "FAILED"),
    Col("Observed", "observed_value"),
]
# The page leaves out which run recorded each result (a rerun that reads nothing new leaves
# the section as it was); data_quality.csv keeps it.
DQ_CSV_COLUMNS = [*(c.key for c in DQ_COLS), "run_id"]
DQ_SUITE_COLS = [
    Col("Suite", "suite"),
    Col("Checks", "checks", integer, True),
    Col("Passed", "passed", integer, True),
    Col("Failed: critical", "failed_critical", integer, True),
    Col("Failed: warning", "failed_warning", integer, True),
    Col("Runs", "runs", integer, True),
]
INPUT_COLS = [
    Col("Source", "source"),
    Col("Files", "files", integer, True),
    Col("Rows read", "rows_read", integer, True),
    Col("Loaded", "rows_loaded", integer, True),
    Col("Quarantined", "rows_quarantined", integer, True),
    Col("Superseded", "rows_superseded", integer, True),
    Col("Deduplicated", "rows_deduplicated", integer, True),
    Col("Read by runs", "runs", integer, True),
]
QUARANTINE_COLS = [
    Col("Source", "source"),
    Col("Field", "field"),
    Col("Reason", "reason"),
    Col("Currency", "currency"),
    Col("Rows", "rows", integer, True),
    Col("Amount at stake", "amount", money, True),
    Col("Files", "files", integer, True),
]
QUARANTINE_CSV_COLUMNS = [
    "source", "path", "field", "reason", "currency", "rows", "amount", "run_id",
]  # fmt: skip
CLOSE_EVENT_COLS = [
    Col("Event", "event"),
    Col("At", "event_at"),
    Col("By", "event_by"),
    Col("Reason", "reason"),
    Col("Snapshot sha256 (start)", "snapshot_sha256"),
]


def close_state(state: dict | None) -> dict:
    """Open or closed (by whom, which snapshot, whether marts still match it), or reopened."""
    if state is None or not state["closed"]:
        return {"closed": False, "reopened": state is not None, **_reopened(state)}
    return {
        "closed": True,
        "closed_at": plain(state["closed_at"]),
        "closed_by": state["closed_by"],
        "sha256": state["snapshot_sha256"][:16],
        "snapshot_matches": state["snapshot_matches"],
    }


def _reopened(state: dict | None) -> dict:
    if state is None:
        return {}
    return {
        "reopened_at": plain(state["reopened_at"]),
        "reopened_by": state["reopened_by"],
        "reopen_reason": state["reopen_reason"] or "",
    }


def close_history(state: dict | None) -> dict | None:
    if not state or not state["events"]:
        return None
    rows = [
        {
            "event": e["event"],
            "event_at": plain(e["event_at"]),
            "event_by": e["event_by"],
            "reason": e["reason"] or "",
            "snapshot_sha256": (e["snapshot_sha256"] or "")[:16],
        }
        for e in state["events"]
    ]
    return table(CLOSE_EVENT_COLS, rows)


def published(run: dict | None, folder: Path) -> dict | None:
    """Which run published the period, when, and as of which date its statuses were judged."""
    if run is None:
        return None
    return {
        "run_id": run["published_by_run_id"],
        "at": plain(run["published_at"]),
        "command": run["command"] or "",
        "status": run["run_status"] or "",
        "as_of": run["as_of"].isoformat() if run["as_of"] else "not recorded",
        "months_final": integer(run["months_final"]),
        "docs_href": _data_docs_href(run["published_by_run_id"], folder),
    }


def _data_docs_href(run_id: str | None, folder: Path) -> str:
    """The run's Great Expectations Data Docs site relative to the page, if it was built here."""
    from inference_ledger.quality.runner import docs_dir
    from inference_ledger.settings import load_settings

    index = docs_dir(load_settings().home, run_id) / "index.html" if run_id else None
    if index is None or not index.exists():
        return ""
    return Path(os.path.relpath(index, folder.resolve())).as_posix()


def data_quality(conn, label: str, dq: list[dict]) -> dict:
    """Per suite: checks, passed, failed (critical blocks publishing, warning does not); the
    failed checks, then all of them."""
    failed = [r for r in dq if not r["success"]]
    critical = sum(1 for r in failed if r["severity"] == "critical")
    suites = Q.DQ_SUITES.run(conn, label) if dq else []  # shown only when there are results
    return {
        "checks": len(dq),
        "failed": len(failed),
        "critical": critical,
        "warnings": len(failed) - critical,
        "suites": table(DQ_SUITE_COLS, suites, query=Q.DQ_SUITES, table_id="dq-suites"),
        "suites_sql": sql(Q.DQ_SUITES, label),
        "failed_table": table(
            DQ_COLS,
            failed,
            query=Q.DQ_RESULTS,
            table_id="dq-failed",
            row_class=lambda r: "fail",
            empty="No check failed.",
        ),
        "all_table": table(DQ_COLS, dq, query=Q.DQ_RESULTS, table_id="dq"),
        "sql": sql(Q.DQ_RESULTS, label),
    }


def inputs(label: str, files: list[dict], quarantine: list[dict]) -> dict:
    """The input files the figures rest on and the rows quarantined from them."""
    return {
        "table": table(
            INPUT_COLS,
            files,
            query=Q.INPUT_FILES,
            table_id="inputs",
            empty="No input files recorded.",
        ),
        "sql": sql(Q.INPUT_FILES, label, note="audit, not marts"),
        "quarantine_total": _quarantine_total(quarantine),
        "quarantine": table(
            QUARANTINE_COLS,
            quarantine,
            query=Q.QUARANTINE,
            table_id="quarantine",
            empty="No rows quarantined.",
        ),
        "quarantine_sql": sql(Q.QUARANTINE, label),
        "quarantine_files_sql": sql(Q.QUARANTINE_FILES, label, note="quarantine.csv: per file"),
    }


def _quarantine_total(quarantine: list[dict]) -> dict | None:
    """The period's quarantined rows and the money at stake, per currency (exact: summed
    here from the rows' numerics, not from the status view's JSON)."""
    rows = sum(int(r["rows"]) for r in quarantine)
    if not rows:
        return None
    by_currency: dict[str, Decimal] = {}
    for r in quarantine:
        if r["currency"] and r["amount"] is not None:
            by_currency[r["currency"]] = by_currency.get(r["currency"], Decimal(0)) + r["amount"]
    at_stake = ", ".join(f"{c} {money(v)}" for c, v in sorted(by_currency.items()))
    return {"rows": integer(rows), "at_stake": at_stake}
