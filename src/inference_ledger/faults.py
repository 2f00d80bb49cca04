"""Fault injection for crash tests: named kill points in the pipeline.

`checkpoint(name)` does nothing unless the environment variable LEDGER_FAULT_KILL_AT names that
point; then the process SIGKILLs itself there, as an out-of-memory kill or a lost node would:
no exception handler, `finally` or atexit hook runs, so what survives is exactly what was
durable at that instant. Tests set the variable on a subprocess only.
"""

from __future__ import annotations

import os
import signal

ENV = "LEDGER_FAULT_KILL_AT"

# Every point the pipeline passes, in order; a name not listed here is a typo in a test.
POINTS = (
    "pipeline:after_prepare",
    "pipeline:after_ingest",
    "pipeline:after_aggregate",
    "publish:after_stage",
    "publish:in_transaction",
)


def checkpoint(name: str) -> None:
    if name not in POINTS:
        raise ValueError(f"unknown fault point {name!r}")
    from inference_ledger.settings import load_settings

    wanted = load_settings().fault_kill_at
    if not wanted:
        return
    if wanted not in POINTS:
        # A misspelt kill point would let a crash test pass without crashing anything.
        raise ValueError(f"{ENV}={wanted!r} names no fault point; known: {', '.join(POINTS)}")
    if wanted == name:
        os.kill(os.getpid(), signal.SIGKILL)
