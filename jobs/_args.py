"""Arguments every job shares (run id, landing folder, period). Parsing only."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--run-id", required=True, help="the run this step belongs to (audit.runs)")
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--start", type=date.fromisoformat, default=None)
    p.add_argument("--end", type=date.fromisoformat, default=None)
    p.add_argument("--as-of", type=date.fromisoformat, default=None)
    return p


def context(args):
    from inference_ledger.steps import RunContext

    ctx = RunContext(
        run_id=args.run_id, landing=args.landing.resolve(), start=args.start, end=args.end
    )
    if args.as_of:
        ctx.as_of = args.as_of
    return ctx
