"""The run model: what a ledger run is, how its steps run, and who owns its state
(docs/architecture.md).

- `context.RunContext`: what the run is (landing, range, as-of, sources, settings) and what its
  steps note on the way.
- `runner.Step` / `runner.Run`: every step (inference_ledger.steps) runs the same way: lake
  lock, plan, input gate, execute, record, output gate.
- `store.RunStore`: the run's record in audit.runs (opened once, finished once), the range and
  closed periods its aggregate used, its failed months, and the lake lock.
- `plan`: the pure decisions of an incremental ingest.
- Drivers: `inference_ledger.pipeline` (`ledger run`, `ledger demo`), `jobs/*.py`
  (`spark-submit`, one step each; the DAGs' tasks through `inference_ledger.orchestration`),
  `bench/run.py`.
"""

from inference_ledger.run.store import LAKE_LOCK_KEY, RunStateError, RunStore, lake_lock

__all__ = ["LAKE_LOCK_KEY", "RunStateError", "RunStore", "lake_lock"]
