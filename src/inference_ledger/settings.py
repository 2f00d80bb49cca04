"""Runtime settings: every `LEDGER_*` environment variable, read and checked here only
(DESIGN.md "Settings by environment"). Read when asked (`load_settings()`), not at import: a
DAG task, a spark-submit job and a test each see the environment they run in.

| variable | field | default |
|---|---|---|
| LEDGER_HOME | home | ./var |
| LEDGER_DATABASE_URL | database_url | the embedded Postgres under $LEDGER_HOME |
| LEDGER_SPARK_MASTER | spark_master (configured_spark_master: as set) | local[*] |
| LEDGER_LAKE_URI | lake_uri | $LEDGER_HOME/lake |
| LEDGER_DATA_DOCS_KEEP_RUNS | data_docs_keep_runs | 30 |
| LEDGER_LANDING | landing (a folder or an object-store URL) | $LEDGER_HOME/landing |
| LEDGER_JOBS_DIR | jobs_dir (the spark-submit entry points) | the repository's jobs/ |
| LEDGER_SPARK_DRIVER_MEMORY | spark_driver_memory | 2g |
| LEDGER_SHUFFLE_PARTITIONS | shuffle_partitions | 4 |
| LEDGER_SPARK_JAVA_OPTIONS | spark_java_options (added to the driver's and executors' JVM options) | none |
| LEDGER_SPARK_CLASS_ARCHIVE | spark_class_archive (the JVMs' class-data archive; `off`: none) | `make setup`'s, inference_ledger/spark_archive.py |
| LEDGER_SPARK_CODEGEN | spark_codegen (`auto`, `on`, `off`: Spark's code generation, inference_ledger/spark.py) | auto |
| LEDGER_SPARK_PAGE_SIZE | spark_page_size (`spark.buffer.pageSize`, e.g. `1m`) | Spark's own (32m for a 2g driver on 2 cores) |
| LEDGER_ALERT_WEBHOOK_URL | alert_webhook_url (missed-deadline alerts) | none |
| LEDGER_LOGIN_PASSWORD | login_password (`ledger db grant-login`) | prompt |
| LEDGER_FAULT_KILL_AT | fault_kill_at (crash tests' kill point) | none |
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SPARK_MASTER = "local[*]"
CODEGEN_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    spark_master: str
    lake_uri: str | None = None  # LEDGER_LAKE_URI: any Hadoop-compatible URI (s3a://, abfss://)
    # LEDGER_DATA_DOCS_KEEP_RUNS: Data Docs sites kept under $LEDGER_HOME/data_docs (the newest
    # builds; 0 keeps all). About 1 MB a run.
    data_docs_keep_runs: int = 30
    # LEDGER_SPARK_MASTER as set, None when it is not: under spark-submit only a configured
    # master overrides spark-submit's own.
    configured_spark_master: str | None = None
    landing: str | None = None
    jobs_dir: Path | None = None
    spark_driver_memory: str = "2g"
    shuffle_partitions: int = 4
    # LEDGER_SPARK_JAVA_OPTIONS: JVM options for the Spark driver and executors, after the
    # project's own (inference_ledger.spark.java_options), e.g. `-XX:TieredStopAtLevel=1`
    # where JVMs are short-lived and share few cores (the test suite).
    spark_java_options: str = ""
    # LEDGER_SPARK_CLASS_ARCHIVE: the class-data archive every Spark JVM maps when the file is
    # there (inference_ledger.spark_archive); None: no archive.
    spark_class_archive: Path | None = None
    # LEDGER_SPARK_CODEGEN: whether Spark compiles Java for a step's plans (`on`), evaluates
    # them interpreted (`off`), or decides by the bytes the step reads (`auto`: spark.py).
    spark_codegen: str = "auto"
    # LEDGER_SPARK_PAGE_SIZE: the memory page a Spark task's hash map, sorter or broadcast
    # relation takes at a time (`spark.buffer.pageSize`); None: Spark's own choice. The tests
    # set 1m, with G1 regions of 4 MB (a page must be under half a region, or each one fills a
    # region: the 10M bench night ran out of heap so). Large nights keep Spark's.
    spark_page_size: str | None = None
    alert_webhook_url: str | None = field(default=None, repr=False)
    login_password: str | None = field(default=None, repr=False)
    fault_kill_at: str | None = None

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
        """Where `ledger demo` writes its generated landing folder, and the landing when
        LEDGER_LANDING is not set."""
        return self.home / "landing"


def _whole(name: str, raw: str | None, default: int, least: int) -> int:
    if not raw:
        return default
    if not raw.strip().isdigit() or int(raw) < least:
        raise ValueError(f"{name} must be a whole number >= {least}, not {raw!r}")
    return int(raw)


def _class_archive(raw: str | None) -> Path | None:
    if raw is None:
        from inference_ledger.spark_archive import default_path

        return default_path()
    return None if raw.strip().lower() == "off" else Path(raw).expanduser()


def _codegen(raw: str | None) -> str:
    mode = (raw or "auto").strip().lower()
    if mode not in CODEGEN_MODES:
        raise ValueError(
            f"LEDGER_SPARK_CODEGEN must be one of {', '.join(CODEGEN_MODES)}, not {raw!r}"
        )
    return mode


def _page_size(raw: str | None) -> str | None:
    """A byte size as Spark reads one (`1m`, `256k`, `4194304`), or None."""
    size = (raw or "").strip().lower()
    if not size:
        return None
    if not re.fullmatch(r"[1-9][0-9]*[kmg]?b?", size):
        raise ValueError(f"LEDGER_SPARK_PAGE_SIZE must be a byte size such as 1m, not {raw!r}")
    return size


def _set(name: str) -> str | None:
    return os.environ.get(name) or None


def load_settings() -> Settings:
    home = Path(os.environ.get("LEDGER_HOME") or "./var").expanduser().resolve()
    master = _set("LEDGER_SPARK_MASTER")
    jobs = _set("LEDGER_JOBS_DIR")
    return Settings(
        home=home,
        database_url=_set("LEDGER_DATABASE_URL"),
        spark_master=master or DEFAULT_SPARK_MASTER,
        lake_uri=_set("LEDGER_LAKE_URI"),
        data_docs_keep_runs=_whole(
            "LEDGER_DATA_DOCS_KEEP_RUNS", os.environ.get("LEDGER_DATA_DOCS_KEEP_RUNS"), 30, 0
        ),
        configured_spark_master=master,
        landing=_set("LEDGER_LANDING"),
        jobs_dir=Path(jobs) if jobs else None,
        spark_driver_memory=_set("LEDGER_SPARK_DRIVER_MEMORY") or "2g",
        shuffle_partitions=_whole(
            "LEDGER_SHUFFLE_PARTITIONS", os.environ.get("LEDGER_SHUFFLE_PARTITIONS"), 4, 1
        ),
        spark_java_options=(_set("LEDGER_SPARK_JAVA_OPTIONS") or "").strip(),
        spark_class_archive=_class_archive(_set("LEDGER_SPARK_CLASS_ARCHIVE")),
        spark_codegen=_codegen(_set("LEDGER_SPARK_CODEGEN")),
        spark_page_size=_page_size(_set("LEDGER_SPARK_PAGE_SIZE")),
        alert_webhook_url=_set("LEDGER_ALERT_WEBHOOK_URL"),
        # An empty password is a password (rejected as too short), not "ask me".
        login_password=os.environ.get("LEDGER_LOGIN_PASSWORD"),
        fault_kill_at=_set("LEDGER_FAULT_KILL_AT"),
    )
