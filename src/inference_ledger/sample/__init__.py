"""Deterministic sample landing data reproducing the public-figures scenario (DESIGN.md).

    from inference_ledger.sample import generate_landing
    summary = generate_landing(Path("var/landing"), seed=7, scale=1.0)

Layout under out_dir (only these three folders are wiped and rewritten):
  billing/azure/<export>/<YYYYMMDD-YYYYMMDD>/<runId>/manifest.json + part_<n>_<runId[:8]>.csv[.gz]
  usage/<channel>/<YYYY-MM-DD>/page-<nnnn>.json | .json.gz | .jsonl
  finance/{revenue,settlements,contracts,fx,prices}/*.csv (+ commitments/ with `commitments`)
"""

from inference_ledger.sample.generator import GenerationSummary, generate_landing
from inference_ledger.sample.scenario import SCENARIO_QUARTERS, QuarterTargets

__all__ = ["SCENARIO_QUARTERS", "GenerationSummary", "QuarterTargets", "generate_landing"]
