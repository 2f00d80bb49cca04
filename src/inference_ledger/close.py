"""Period close: freeze a quarter's published figures with a checksum in `audit`."""

from __future__ import annotations

import getpass
import hashlib
import json

from inference_ledger.db import connect, database_url
from inference_ledger.periods import Quarter

SNAPSHOT_SQL = {
    "quarterly_summary": "SELECT * FROM marts.quarterly_summary WHERE period_label = %s ORDER BY period_label",
    "revshare_reconciliation": (
        "SELECT * FROM marts.revshare_reconciliation WHERE period_label = %s "
        "ORDER BY agreement_id, direction, is_adjustment"
    ),
}


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


def close_period(period: str, closed_by: str | None = None) -> str:
    label = Quarter.parse(period).label
    conn = connect(database_url())
    try:
        snap = snapshot(conn, label)
        if not snap["quarterly_summary"]:
            raise ValueError(f"period {label} has no published figures to close")
        body = json.dumps(snap, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(body.encode()).hexdigest()
        with conn.cursor() as cur:
            cur.execute(
                """INSERT INTO audit.closed_periods (period_label, closed_at, closed_by, snapshot_sha256, snapshot)
                   VALUES (%s, now(), %s, %s, %s::jsonb)
                   ON CONFLICT (period_label) DO NOTHING RETURNING period_label""",
                (label, closed_by or getpass.getuser(), digest, body),
            )
            if cur.fetchone() is None:
                raise ValueError(f"period {label} is already closed")
        conn.commit()
        return digest
    finally:
        conn.close()
