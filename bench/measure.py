"""Measuring the benchmark: peak memory sampled in a thread (driver, Spark JVM, embedded
Postgres), per-stage seconds / rows / rows per second, the machine, and a fresh LEDGER_HOME."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import threading
import time
from pathlib import Path

import psutil


class MemorySampler:
    """Peak RSS of this process and its children (the Spark JVM) and, separately, of the
    embedded Postgres (not our child), sampled every 0.2 s in a thread."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.me = psutil.Process()
        self.peak_driver = self.peak_jvm = self.peak_pg = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def reset(self) -> None:
        self.peak_driver = self.peak_jvm = self.peak_pg = 0
        self.sample()

    def sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            self.peak_driver = max(self.peak_driver, self.me.memory_info().rss)
        jvm = pg = 0
        with contextlib.suppress(psutil.Error):
            for child in self.me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    jvm += child.memory_info().rss
        home = os.environ.get("LEDGER_HOME", "")
        with contextlib.suppress(psutil.Error):
            for p in psutil.process_iter(["name", "cmdline"]):
                cmd = " ".join(p.info["cmdline"] or [])
                if "postgres" in (p.info["name"] or "") and home and home in cmd:
                    pg += sum(c.memory_info().rss for c in [p, *p.children()])
        self.peak_jvm = max(self.peak_jvm, jvm)
        self.peak_pg = max(self.peak_pg, pg)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


MB = 1 << 20


class Stages:
    """Per stage: seconds, rows, rows/s and peak memory; in the order run."""

    def __init__(self, mem: MemorySampler):
        self.mem = mem
        self.rows: dict[str, dict] = {}

    @contextlib.contextmanager
    def stage(self, name: str, rows: int | None = None):
        self.mem.reset()
        t0 = time.perf_counter()
        info: dict = {"rows": rows}
        yield info
        seconds = time.perf_counter() - t0
        self.mem.sample()
        self.add(name, seconds, info.get("rows"))

    def add(self, name: str, seconds: float, rows: int | None = None) -> None:
        self.rows[name] = {
            "seconds": round(seconds, 3),
            "rows": rows,
            "rows_per_s": round(rows / seconds) if rows and seconds > 0 else None,
            "peak_driver_mb": round(self.mem.peak_driver / MB),
            "peak_jvm_mb": round(self.mem.peak_jvm / MB),
            "peak_postgres_mb": round(self.mem.peak_pg / MB),
        }

    def seconds(self, *names: str) -> float:
        return sum(self.rows[n]["seconds"] for n in names if n in self.rows)


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    load = os.getloadavg()
    return {
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / (1 << 30), 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "load_avg_at_start": [round(x, 2) for x in load],
        "spark_master": os.environ.get("LEDGER_SPARK_MASTER", "local[*]"),
        "shuffle_partitions": os.environ.get("LEDGER_SHUFFLE_PARTITIONS", "4"),
        "driver_memory": os.environ.get("LEDGER_SPARK_DRIVER_MEMORY", "2g"),
    }


@contextlib.contextmanager
def ledger_home(path: Path):
    """A fresh LEDGER_HOME (own lake, own embedded Postgres), stopped and restored after."""
    from inference_ledger.db import stop_embedded
    from inference_ledger.settings import load_settings

    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    before = {k: os.environ.get(k) for k in ("LEDGER_HOME", "LEDGER_DATABASE_URL")}
    os.environ["LEDGER_HOME"] = str(path)
    os.environ.pop("LEDGER_DATABASE_URL", None)
    try:
        yield load_settings()
    finally:
        with contextlib.suppress(Exception):
            stop_embedded(load_settings())
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
