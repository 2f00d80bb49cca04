"""The report step: the period reports (HTML + CSV, from the marts) of every quarter the run
published, at the range its aggregate recorded."""

from __future__ import annotations

from pathlib import Path

from inference_ledger.db import connection
from inference_ledger.periods import quarter_labels
from inference_ledger.run.runner import Run, Step


class ReportStep(Step[list[str], list[Path]]):
    name = "report"

    def __init__(self, out_dir: Path | None = None):
        self.out_dir = out_dir

    def plan(self, run: Run) -> list[str]:
        return quarter_labels(*run.store.range())

    def execute(self, run: Run, plan: list[str]) -> list[Path]:
        from inference_ledger.report import write_period_report

        out = self.out_dir or run.ctx.settings.reports_dir
        with connection(run.url) as conn:
            return [write_period_report(conn, label, out) for label in plan]
