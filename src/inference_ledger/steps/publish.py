"""The publish step: the run's marts (under the run in the lake) -> staging (COPY) -> the staging
gate -> one transaction that replaces the run's open periods in `marts` (publish.py). Then, if
its ingest left billing months out (e.g. a missing FX rate), the run fails naming them: the
other months are published, those keep their previous figures."""

from __future__ import annotations

from inference_ledger.publish import PublishOutcome, publish
from inference_ledger.run.runner import Run, Step
from inference_ledger.run.store import RunStore


class PublishStep(Step[None, PublishOutcome]):
    name = "publish"

    def execute(self, run: Run, plan: None) -> PublishOutcome:
        return publish(run.ctx, run.url)

    def record(self, run: Run, plan: None, result: PublishOutcome) -> None:
        failed = run.store.failed_months()
        if failed:
            raise RunStore.failed_months_error(failed)
