"""The run model: what a ledger run is and who owns its state.

- `store.RunStore`: the run's record in audit.runs (opened once, finished once), its failed
  months and the lake lock. Every driver goes through it.
- `inference_ledger.pipeline`: the steps of a run (ingest, aggregate, publish) as each driver
  calls them; `run_pipeline` runs them all (the CLI, the benchmark's one-more-night).
- Drivers: `inference_ledger.cli` (`ledger run`), `jobs/*.py` (`spark-submit`, one step each),
  the DAGs in `dags/` (through `inference_ledger.orchestration`), `bench/run.py`.
"""

from inference_ledger.run.store import LAKE_LOCK_KEY, RunStateError, RunStore, lake_lock

__all__ = ["LAKE_LOCK_KEY", "RunStateError", "RunStore", "lake_lock"]
