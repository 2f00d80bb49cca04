"""Spark's code generation by the size of a step's input (LEDGER_SPARK_CODEGEN, spark.py): the
decision, the step runner applying it, and both of Spark's evaluators giving the same records
on real and generated inputs (a whole run each way: the `cli_baseline` comparisons)."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import pytest

from inference_ledger import spark as S
from inference_ledger.ingest import billing, exports, usage
from inference_ledger.run.context import RunContext
from inference_ledger.run.runner import Run, Step
from inference_ledger.settings import load_settings
from inference_ledger.steps.ingest import IngestPlan, planned_bytes
from inference_ledger.workload import WorkloadRules
from tests.billing_support import read_billing_rows
from tests.helpers import lake_df
from tests.test_ingest_real_samples import EA, SPEC_AI, azure_run

MIB = 1 << 20


@pytest.mark.parametrize(
    ("mode", "size", "compiled"),
    [
        ("auto", 32 * MIB - 1, False),
        ("auto", 32 * MIB, True),
        ("on", 0, True),
        ("off", 10**12, False),
    ],
)
def test_auto_compiles_from_32_mib_of_input_and_on_off_are_fixed(mode, size, compiled):
    settings = dataclasses.replace(load_settings(), spark_codegen=mode)
    assert S.codegen_for(settings, size) is compiled


def test_the_setting_is_checked_and_defaults_to_auto(monkeypatch):
    monkeypatch.delenv("LEDGER_SPARK_CODEGEN", raising=False)
    assert load_settings().spark_codegen == "auto"
    monkeypatch.setenv("LEDGER_SPARK_CODEGEN", " OFF ")
    assert load_settings().spark_codegen == "off"
    monkeypatch.setenv("LEDGER_SPARK_CODEGEN", "interpreted")
    with pytest.raises(ValueError, match="LEDGER_SPARK_CODEGEN must be one of auto, on, off"):
        load_settings()


def test_an_ingest_plan_counts_compressed_files_eight_times(tmp_path):
    plain = tmp_path / "usage" / "a.jsonl"
    packed = tmp_path / "usage" / "b.jsonl.gz"
    plain.parent.mkdir()
    plain.write_bytes(b"x" * 1000)
    packed.write_bytes(gzip.compress(b"y" * 5000))
    blob = azure_run(tmp_path, EA.read_bytes(), 11)
    run = exports.discover_runs(tmp_path)[0]
    plan = IngestPlan(
        feeds=frozenset(),
        finance_unchanged=True,
        export_runs=[run],
        billing_runs=[run],
        commitment_runs=[],
        usage_files=[plain, packed, tmp_path / "usage" / "gone.jsonl"],
        usage_read=None,
    )
    expected = 1000 + 8 * packed.stat().st_size + blob.stat().st_size
    assert planned_bytes(plan) == expected


class _Sized(Step[None, tuple[str, str]]):
    name = "sized"

    def __init__(self, size: int):
        self.size = size

    def input_bytes(self, run: Run, plan: None) -> int:
        return self.size

    def execute(self, run: Run, plan: None) -> tuple[str, str]:
        conf = run.spark.conf
        return conf.get("spark.sql.codegen.wholeStage"), conf.get("spark.sql.codegen.factoryMode")


@pytest.mark.parametrize(
    ("mode", "size", "expected"),
    [
        ("auto", 1 * MIB, ("false", "NO_CODEGEN")),
        ("auto", 64 * MIB, ("true", "FALLBACK")),
        ("on", 0, ("true", "FALLBACK")),
    ],
)
def test_the_step_runner_sets_a_steps_mode_before_its_gate_and_work(spark, mode, size, expected):
    settings = dataclasses.replace(load_settings(), spark_codegen=mode)
    ctx = RunContext(run_id="codegen-test", landing=Path("."), settings=settings)
    try:
        assert _Sized(size).run(Run(ctx, "postgresql://unused")) == expected
        assert ctx.codegen == {"sized": expected[0] == "true"}
    finally:
        S.set_codegen(spark, False)  # the test session's (conftest.py)


def _compiles(spark) -> int:
    metrics = spark.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics
    return metrics.METRIC_COMPILATION_TIME().getCount()


def _both_ways(spark, frame) -> tuple[list, list]:
    """`frame()`'s rows compiled, then interpreted (no plan or expression compiled: at most a
    class outside the evaluators, e.g. a scan's row conversion)."""
    try:
        S.set_codegen(spark, True)
        compiled = sorted(frame().collect(), key=repr)
        S.set_codegen(spark, False)
        before = _compiles(spark)
        interpreted = sorted(frame().collect(), key=repr)
        assert _compiles(spark) - before <= 2
    finally:
        S.set_codegen(spark, False)
    return compiled, interpreted


@pytest.mark.slow  # ~15 s: compiling the billing plan is what a small run no longer does
def test_billing_records_of_real_exports_are_the_same_compiled_or_interpreted(spark, tmp_path):
    """Microsoft's EA sample and the FOCUS specification's 19 AI billing samples: every
    column of every record (parsed amounts, dates, tokens, workload, status and reason)."""
    azure_run(tmp_path, EA.read_bytes(), 11)
    for path in sorted(SPEC_AI.glob("*/*.csv")):
        run = tmp_path / "billing/focus" / f"{path.parent.name}-{path.stem}" / "run-1"
        run.mkdir(parents=True)
        (run / path.name).write_bytes(path.read_bytes())
    fx = lake_df(spark, "fx_rates", [])
    runs = exports.discover_runs(tmp_path)

    def records():
        rows, _ = read_billing_rows(spark, runs)
        return billing.billing_records(rows, fx, WorkloadRules.load())

    compiled, interpreted = _both_ways(spark, records)
    assert len(compiled) == 72
    assert compiled == interpreted


def test_usage_records_with_faults_are_the_same_compiled_or_interpreted(spark, tmp_path):
    """Generated usage pages with redeliveries, conflicts, newer fields and a partial pull:
    statuses, reasons and the dedupe window's verdicts alike."""
    from inference_ledger.sample.scenario import quarter_range
    from inference_ledger.sample.sink import Sink
    from inference_ledger.sample.usage import write_usage

    q = quarter_range("2024-Q1", "2024-Q1")
    write_usage(Sink(tmp_path), q, 3, 0.25, True, newer_fields=True, unfinished_pull=True)
    files = usage.usage_files(tmp_path)
    compiled, interpreted = _both_ways(
        spark, lambda: usage.usage_records(usage.read_pages(spark, files))
    )
    assert {r["status"] for r in compiled} >= {"loaded", "deduplicated"}
    assert compiled == interpreted
