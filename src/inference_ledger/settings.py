"""Runtime settings, read from the environment (DESIGN.md "Settings by environment")."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    spark_master: str
    lake_uri: str | None = None  # LEDGER_LAKE_URI: any Hadoop-compatible URI (s3a://, abfss://)
    # LEDGER_DATA_DOCS_KEEP_RUNS: Data Docs sites kept under $LEDGER_HOME/data_docs (the newest
    # builds; 0 keeps all). About 1 MB a run.
    data_docs_keep_runs: int = 30

    @property
    def lake_dir(self) -> Path | str:
        """The lake root: `$LEDGER_LAKE_URI` as given (a URI string, never a local Path), else
        `$LEDGER_HOME/lake`. Only Spark and `inference_ledger.lake` read or write it."""
        return self.lake_uri.rstrip("/") if self.lake_uri else self.home / "lake"

    @property
    def pgdata_dir(self) -> Path:
        return self.home / "pgdata"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def landing_dir(self) -> Path:
        """Where `ledger demo` writes its generated landing folder."""
        return self.home / "landing"


def _keep_runs(raw: str | None) -> int:
    if not raw:
        return Settings.data_docs_keep_runs
    if not raw.strip().isdigit():
        raise ValueError(f"LEDGER_DATA_DOCS_KEEP_RUNS must be a whole number >= 0, not {raw!r}")
    return int(raw)


def load_settings() -> Settings:
    home = Path(os.environ.get("LEDGER_HOME") or "./var").expanduser().resolve()
    return Settings(
        home=home,
        database_url=os.environ.get("LEDGER_DATABASE_URL") or None,
        spark_master=os.environ.get("LEDGER_SPARK_MASTER") or "local[*]",
        lake_uri=os.environ.get("LEDGER_LAKE_URI") or None,
        data_docs_keep_runs=_keep_runs(os.environ.get("LEDGER_DATA_DOCS_KEEP_RUNS")),
    )
