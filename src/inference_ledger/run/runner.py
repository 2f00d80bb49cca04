"""The step runner: every step of a run (ingest, aggregate, publish, report) runs the same way,
whichever driver calls it (`ledger run`, a `spark-submit` job, an Airflow task, the benchmark):

    lake lock (steps that write the lake)
      -> plan            what to read, skip or republish (facts gathered here, decided by the
                         pure functions of run/plan.py); the bytes it reads then decide
                         whether Spark compiles the step's plans (spark.codegen_for)
      -> check_inputs    the data-quality gate on what the step reads (aggregate: the lake)
      -> execute         the work
      -> record          what happened, into the run's state (audit tables, the run store)
      -> check_outputs   the data-quality gate on what the step wrote (ingest: every file read)

Publish's gate sits inside its publishing transaction (publish.py), so it has no hook here. Each
phase's seconds land in `RunContext.timings` as `step.<step>.<phase>`; the gates time themselves as
`gate.<name>` (quality/gate.py).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from inference_ledger.run.context import RunContext
from inference_ledger.run.store import RunStore

log = logging.getLogger(__name__)

P = TypeVar("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Run:
    """One ledger run as its steps see it: the context, the database and the run's store."""

    ctx: RunContext
    url: str

    @property
    def store(self) -> RunStore:
        return RunStore(self.url, self.ctx.run_id)

    @property
    def spark(self):
        from inference_ledger.spark import get_spark

        return get_spark()


class Step(ABC, Generic[P, R]):
    name: ClassVar[str]
    # Steps that write the lake hold the lake lock (run/store.py) for all their phases.
    writes_lake: ClassVar[bool] = False

    def plan(self, run: Run) -> P:
        return None  # type: ignore[return-value]

    def input_bytes(self, run: Run, plan: P) -> int | None:
        """The bytes the step reads with Spark, which decide whether Spark compiles the step's
        plans (`spark.codegen_for`); None: a step without Spark work."""
        return None

    def check_inputs(self, run: Run, plan: P) -> None:
        """The data-quality gate on the step's inputs; raises QualityGateFailed."""

    @abstractmethod
    def execute(self, run: Run, plan: P) -> R: ...

    def record(self, run: Run, plan: P, result: R) -> None:
        """What the step did, into the run's state."""

    def check_outputs(self, run: Run, plan: P, result: R) -> None:
        """The data-quality gate on what the step wrote; raises QualityGateFailed."""

    def run(self, run: Run) -> R:
        with run.store.lake_lock() if self.writes_lake else nullcontext():
            plan = self._timed(run, "plan", self.plan, run)
            self._codegen(run, plan)
            self.check_inputs(run, plan)
            result = self._timed(run, "execute", self.execute, run, plan)
            self._timed(run, "record", self.record, run, plan, result)
            self.check_outputs(run, plan, result)
        return result

    def _codegen(self, run: Run, plan: P) -> None:
        size = self.input_bytes(run, plan)
        if size is None:
            return
        from inference_ledger.spark import codegen_for, set_codegen

        on = codegen_for(run.ctx.settings, size)
        set_codegen(run.spark, on)
        run.ctx.codegen[self.name] = on
        log.info(
            "%s: %.1f MB of input uncompressed, Spark code generation %s (LEDGER_SPARK_CODEGEN=%s)",
            self.name, size / 1e6, "on" if on else "off", run.ctx.settings.spark_codegen,
        )  # fmt: skip

    def _timed(self, run: Run, phase: str, fn, *args: Any):
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            seconds = time.perf_counter() - started
            run.ctx.timings[f"step.{self.name}.{phase}"] = round(seconds, 3)
            log.debug("%s.%s: %.1f s", self.name, phase, seconds)
