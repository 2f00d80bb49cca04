"""One line per finished stage on stderr, with the time since the command started.

Off by default; the CLI turns it on when stderr is a terminal (or with -v) and off with
--quiet, so scripts and cron mails see nothing. Library callers (Airflow) never turn it on.
"""

from __future__ import annotations

import sys
import time
from collections import Counter

_state = {"enabled": False, "t0": time.monotonic()}


def configure(enabled: bool) -> None:
    _state.update(enabled=enabled, t0=time.monotonic())


def stage(name: str, detail: str = "") -> None:
    if not _state["enabled"]:
        return
    elapsed = time.monotonic() - _state["t0"]
    print(f"ledger: {elapsed:7.1f}s {name}" + (f": {detail}" if detail else ""), file=sys.stderr)


def ingested(accounting: list[dict]) -> None:
    """One line per source (billing, usage, finance): files and rows read."""
    rows: Counter = Counter()
    files: Counter = Counter()
    for r in accounting:
        source = str(r["source"]).split(".")[0].split("_")[0]
        rows[source] += int(r["rows_read"])
        files[source] += 1
    for source in ("billing", "usage", "finance"):
        stage(f"ingest {source}", f"{files[source]} files, {rows[source]} rows read")
