"""Period close: freeze a quarter's published figures with a checksum in `audit`; reopen it
only by an explicit, recorded command. Also what a run needs to know about closed periods to
post late changes to them as prior-period adjustments (see transform.reconcile)."""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from psycopg2 import sql

from inference_ledger import contracts

# The sign-off lives in close_signoff; the CLI, the close DAG and the tests import it from here.
from inference_ledger.close_signoff import (  # noqa: F401
    DQ_FAILURES_SQL,
    EXCEPTIONS_SQL,
    OVERRIDE_HINT,
    Blockers,
    CloseRefused,
    SignoffUsageError,
    blocker_lines,
    blocker_summary,
    close_blockers,
    refusal_message,
    signoff_reason,
)
from inference_ledger.db import connection
from inference_ledger.periods import Quarter

# Shared with publish: a close or reopen never interleaves with a publishing transaction.
PUBLISH_LOCK_KEY = 7_420_001

SNAPSHOT_SQL = {
    "quarterly_summary": "SELECT * FROM marts.quarterly_summary WHERE period_label = %s ORDER BY period_label",
    "revshare_reconciliation": (
        "SELECT * FROM marts.revshare_reconciliation WHERE period_label = %s "
        "ORDER BY agreement_id, direction, is_adjustment"
    ),
}
# Sources whose files can move reconciliation figures (adjustment traceability).
FINANCE_SOURCES = ("finance.revenue", "finance.settlements", "finance.contracts", "finance.fx")


def snapshot(conn, period: str) -> dict:
    out = {}
    with conn.cursor() as cur:
        for table, query in SNAPSHOT_SQL.items():
            cur.execute(query, (period,))
            names = [d[0] for d in cur.description]
            out[table] = [
                {k: str(v) if v is not None else None for k, v in zip(names, r, strict=True)}
                for r in cur.fetchall()
            ]
    return out


def snapshot_digest(snap: dict) -> tuple[str, str]:
    body = json.dumps(snap, sort_keys=True, separators=(",", ":"))
    return body, hashlib.sha256(body.encode()).hexdigest()


def _lock(cur) -> None:
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (PUBLISH_LOCK_KEY,))


# ---------------------------------------------------------------- close is a sign-off
# What blocks a close and how a sign-off accepts it: close_signoff.


@dataclass(frozen=True)
class Closed:
    """A close that happened: its snapshot checksum and what its sign-off accepted."""

    period: str
    snapshot_sha256: str
    closed_by: str
    accepted: Blockers
    reason: str | None


def close_period(
    period: str,
    closed_by: str | None = None,
    url: str | None = None,
    *,
    accept_exceptions: bool = False,
    reason: str | None = None,
) -> Closed:
    """Snapshot the period's published figures (the close's SHA-256 is in the result).

    A period with reconciliation exceptions or failed critical data-quality results closes
    only with `accept_exceptions` and a `reason`; what was accepted is recorded with the close
    (who and when are the close's). A period closed and later reopened can be closed again (a
    new snapshot, a new sign-off)."""
    label = Quarter.parse(period).label
    why = signoff_reason(accept_exceptions, reason)
    who = closed_by or getpass.getuser()
    # Committed when the block ends; a refusal (or any error) raises, which rolls back: the
    # lock is released and nothing is recorded.
    with connection(url, autocommit=False) as conn, conn.cursor() as cur:
        _lock(cur)  # publish waits: the figures checked are the figures snapshotted
        snap = snapshot(conn, label)
        if not snap["quarterly_summary"]:
            raise ValueError(f"period {label} has no published figures to close")
        if label in closed_labels(conn):
            raise ValueError(f"period {label} is already closed")
        blockers = close_blockers(conn, label)
        if blockers and not accept_exceptions:
            raise CloseRefused(label, blockers)
        digest = _record_close(cur, label, who, snap, blockers, why)
    return Closed(label, digest, who, blockers, why)


def _record_close(cur, label: str, who: str, snap: dict, accepted: Blockers, why) -> str:
    body, digest = snapshot_digest(snap)
    lists = [
        len(accepted.exceptions),
        json.dumps(accepted.exceptions) if accepted.exceptions else None,
        len(accepted.dq_failures),
        json.dumps(accepted.dq_failures) if accepted.dq_failures else None,
    ]
    cur.execute(
        """INSERT INTO audit.closed_periods (period_label, closed_at, closed_by, snapshot_sha256,
               snapshot, accepted_exception_count, accepted_exceptions, accepted_dq_failure_count,
               accepted_dq_failures, acceptance_reason)
           VALUES (%s, now(), %s, %s, %s::jsonb, %s, %s::jsonb, %s, %s::jsonb, %s)
           ON CONFLICT (period_label) DO UPDATE
           SET closed_at = EXCLUDED.closed_at, closed_by = EXCLUDED.closed_by,
               snapshot_sha256 = EXCLUDED.snapshot_sha256, snapshot = EXCLUDED.snapshot,
               reopened_at = NULL, reopened_by = NULL, reopen_reason = NULL,
               accepted_exception_count = EXCLUDED.accepted_exception_count,
               accepted_exceptions = EXCLUDED.accepted_exceptions,
               accepted_dq_failure_count = EXCLUDED.accepted_dq_failure_count,
               accepted_dq_failures = EXCLUDED.accepted_dq_failures,
               acceptance_reason = EXCLUDED.acceptance_reason
           WHERE audit.closed_periods.reopened_at IS NOT NULL
           RETURNING period_label""",
        (label, who, digest, body, *lists, why),
    )
    if cur.fetchone() is None:  # closed meanwhile: the advisory lock makes this unexpected
        raise ValueError(f"period {label} is already closed")
    cur.execute(
        """INSERT INTO audit.period_close_events (period_label, event, event_by, snapshot_sha256,
               reason, accepted_exception_count, accepted_exceptions, accepted_dq_failure_count,
               accepted_dq_failures)
           VALUES (%s, 'closed', %s, %s, %s, %s, %s::jsonb, %s, %s::jsonb)""",
        (label, who, digest, why, *lists),
    )
    return digest


def reopen_period(
    period: str, reason: str, reopened_by: str | None = None, url: str | None = None
) -> None:
    """Reopen a closed period: the next run republishes it from its inputs, and the adjustments
    that carried its late changes are recomputed (reversed where they sit in closed periods)."""
    label = Quarter.parse(period).label
    if not (reason or "").strip():
        raise ValueError("a reason is required to reopen a period")
    who = reopened_by or getpass.getuser()
    # Committed when the block ends; "not closed" raises, which rolls back.
    with connection(url, autocommit=False) as conn, conn.cursor() as cur:
        _lock(cur)
        cur.execute(
            """UPDATE audit.closed_periods
               SET reopened_at = now(), reopened_by = %s, reopen_reason = %s
               WHERE period_label = %s AND reopened_at IS NULL
               RETURNING period_label""",
            (who, reason.strip(), label),
        )
        if cur.fetchone() is None:
            raise ValueError(f"period {label} is not closed")
        cur.execute(
            """INSERT INTO audit.period_close_events (period_label, event, event_by, reason)
               VALUES (%s, 'reopened', %s, %s)""",
            (label, who, reason.strip()),
        )


def closed_labels(conn) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT period_label FROM audit.closed_periods WHERE reopened_at IS NULL ORDER BY 1"
        )
        return [r[0] for r in cur.fetchall()]


def period_status(conn, period: str) -> dict | None:
    """The close state of a period, its event history, and whether `marts` still matches the
    snapshot taken at close (None when it was never closed)."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT closed_at, closed_by, snapshot_sha256, reopened_at, reopened_by, reopen_reason
               FROM audit.closed_periods WHERE period_label = %s""",
            (period,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        names = ["closed_at", "closed_by", "snapshot_sha256", "reopened_at", "reopened_by"]
        out = dict(zip([*names, "reopen_reason"], row, strict=True))
        cur.execute(
            """SELECT event, event_at, event_by, reason, snapshot_sha256
               FROM audit.period_close_events WHERE period_label = %s ORDER BY event_at, event_id""",
            (period,),
        )
        out["events"] = [
            dict(
                zip(["event", "event_at", "event_by", "reason", "snapshot_sha256"], r, strict=True)
            )
            for r in cur.fetchall()
        ]
    out["closed"] = out["reopened_at"] is None
    out["snapshot_matches"] = snapshot_matches(conn, period)
    return out


def snapshot_matches(conn, period: str) -> bool:
    """Does `marts` still hold exactly what was snapshotted at close? (Columns added to the
    marts after the close are left out of the comparison; renamed ones compare by new name.)"""
    with conn.cursor() as cur:
        cur.execute("SELECT snapshot FROM audit.closed_periods WHERE period_label = %s", (period,))
        row = cur.fetchone()
    if row is None:
        return False
    stored = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    current = snapshot(conn, period)
    for table, rows in stored.items():
        now = current.get(table, [])
        if len(now) != len(rows):
            return False
        # A snapshot taken before a column was renamed (migration 016) names it the old way.
        renamed = contracts.renamed_columns(table)
        for old, new in zip(rows, now, strict=True):
            if any(new.get(renamed.get(k, k)) != v for k, v in old.items()):
                return False
    return True


# ---------------------------------------------------------------- what a run needs


@dataclass
class ClosedState:
    """Closed periods (not reopened) and the rows `marts` holds for them."""

    closed: list[str] = field(default_factory=list)
    frozen: list[tuple] = field(default_factory=list)  # marts.revshare_reconciliation rows


def load_closed_state(conn) -> ClosedState:
    labels = closed_labels(conn)
    if not labels:
        return ClosedState()
    cols = sql.SQL(", ").join(
        sql.Identifier(c.name) for c in contracts.columns("marts", "revshare_reconciliation")
    )
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM marts.revshare_reconciliation WHERE period_label = ANY(%s)"
            ).format(cols),
            (labels,),
        )
        rows = cur.fetchall()
    return ClosedState(closed=labels, frozen=rows)


def adjustment_blocks(
    run_quarters: list[Quarter], closed: list[str] | set[str], earliest: Quarter
) -> tuple[list[tuple[str, str]], Quarter | None]:
    """(target, corrected) pairs: each open quarter of the run and the closed quarters right
    before it (back to the previous open one, not before `earliest`). When the run's last
    quarter is closed, the first open quarter after it is a target too, returned separately
    (the run extends to it only if an adjustment lands there)."""
    closed = set(closed)
    pairs: list[tuple[str, str]] = []

    def block(target: Quarter) -> None:
        q = Quarter(target.year, target.quarter)
        while True:
            q = Quarter(q.year - (q.quarter == 1), (q.quarter - 2) % 4 + 1)
            if q < earliest or q.label not in closed:
                return
            pairs.append((target.label, q.label))

    for q in run_quarters:
        if q.label not in closed:
            block(q)
    extra = None
    if run_quarters and run_quarters[-1].label in closed:
        extra = run_quarters[-1].next()
        while extra.label in closed:
            extra = extra.next()
        block(extra)
    return pairs, extra


def changed_inputs(conn, run_id: str, corrected: list[str]) -> list[tuple[str, str]]:
    """(source, "path (new|changed|removed)") for the finance inputs of `run_id` that differ
    from those of the runs that published `corrected` (paths relative to each run's landing
    folder; a file is unchanged when the same source had a file with the same checksum)."""

    def files(where: str, params) -> list[tuple[str, str, str]]:
        with conn.cursor() as cur:
            cur.execute(
                """SELECT f.source, f.path, f.checksum_sha256, r.landing_dir
                   FROM audit.input_files f JOIN audit.runs r USING (run_id)
                   WHERE f.source = ANY(%s) AND """
                + where,
                (list(FINANCE_SOURCES), *params),
            )
            return [(s, _relative(p, landing), c) for s, p, c, landing in cur.fetchall()]

    now = files("f.run_id = %s", (run_id,))
    before = files(
        """f.run_id IN (SELECT run_id FROM audit.published_periods
                        WHERE table_name = 'revshare_reconciliation' AND period_value = ANY(%s))""",
        (list(corrected),),
    )
    before_sums = {(s, c) for s, _, c in before}
    before_paths = {(s, p) for s, p, _ in before}
    now_sums = {(s, c) for s, _, c in now}
    now_paths = {(s, p) for s, p, _ in now}
    out = set()
    for s, p, c in now:
        if (s, c) not in before_sums:
            out.add((s, f"{p} ({'changed' if (s, p) in before_paths else 'new'})"))
    for s, p, c in before:
        if (s, c) not in now_sums and (s, p) not in now_paths:
            out.add((s, f"{p} (removed)"))
    return sorted(out)


def _relative(path: str, landing: str | None) -> str:
    if landing:
        try:
            return str(Path(path).relative_to(landing))
        except ValueError:
            pass
    return path
