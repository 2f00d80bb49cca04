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
    def staging_dir(self) -> Path:
        """Scratch space for the CSV files Spark writes before COPY into Postgres."""
        return self.home / "stage"

    @property
    def landing_dir(self) -> Path:
        """Where `ledger demo` writes its generated landing folder."""
        return self.home / "landing"


def load_settings() -> Settings:
    home = Path(os.environ.get("LEDGER_HOME") or "./var").expanduser().resolve()
    return Settings(
        home=home,
        database_url=os.environ.get("LEDGER_DATABASE_URL") or None,
        spark_master=os.environ.get("LEDGER_SPARK_MASTER") or "local[*]",
        lake_uri=os.environ.get("LEDGER_LAKE_URI") or None,
    )
