"""What a run is: its spec (landing folder, range, as-of date, sources, settings), fixed when a
driver opens it, and what its steps note on the way (files already ingested, billing months
left out, control totals, timings). Every step and every driver passes this one object."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from inference_ledger.settings import Settings, load_settings

# What `ingest` can be limited to (RunContext.sources), one per ingest DAG. FX rates belong to
# both `finance` and `billing`: billing amounts convert with the rates delivered with them.
SOURCES = ("billing", "usage", "finance")
SOURCE_FEEDS = {
    "billing": ("fx",),
    "usage": (),
    "finance": ("fx", "prices", "contracts", "revenue", "settlements", "commitments"),
}

# Inputs every period's figures rest on whatever their dates (rates, prices, terms,
# commitments).
EVERY_PERIOD_INPUTS = ("fx", "prices", "contracts", "commitments", "contract_commitments")

MARTS = (
    "inference_spend_daily",
    "unit_cost_monthly",
    "unit_margin_monthly",
    "commitment_burndown",
    "quarterly_forecast",
    "cap_projection",
    "revshare_reconciliation",
    "quarterly_summary",
)


@dataclass
class RunContext:
    run_id: str
    landing: Path
    start: date | None = None  # inclusive; None = from the data
    end: date | None = None  # exclusive; None = from the data
    as_of: date = field(default_factory=lambda: datetime.now(UTC).date())
    settings: Settings = field(default_factory=load_settings)
    billing_control_totals: list[dict] = field(default_factory=list)
    # path -> sha256 of files a succeeded run already ingested (incremental billing ingest).
    known_files: dict[str, str] = field(default_factory=dict)
    # billing month -> why it was not loaded (e.g. a missing FX rate); the run fails at the end.
    failed_months: dict[str, list[str]] = field(default_factory=dict)
    # The sources `ingest` reads (SOURCES); the rest of the landing folder is left for later.
    sources: tuple[str, ...] = SOURCES
    # Seconds each part of the run took (`ingest.finance`, `gate.lake_gate`, `publish.stage`,
    # ...): the benchmark reports them, and they show in logs where a slow night went.
    timings: dict[str, float] = field(default_factory=dict)
    # Step -> whether Spark compiled its plans (run/runner.py; the benchmark reports it).
    codegen: dict[str, bool] = field(default_factory=dict)
    # Data Docs: outcomes of gates not rendered yet. A driver that runs every gate in one
    # process (`ledger run`) defers them and renders its site once (quality/gate.py).
    docs_deferred: bool = False
    docs_pending: list = field(default_factory=list)

    @property
    def lake_dir(self) -> Path:
        return self.settings.lake_dir


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"run-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
