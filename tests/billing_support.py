"""Billing rows as the ingest step reads them, for tests that check rows before records."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from inference_ledger.ingest import billing
from inference_ledger.ingest.exports import ExportRun


def read_billing_rows(
    spark: SparkSession, runs: list[ExportRun]
) -> tuple[DataFrame | None, list[ExportRun]]:
    """Raw rows of every blob of every run, joined to their run's facts; runs whose files
    disagree with their manifest come back rejected (their rows are quarantined). The ingest
    step checks the row counts from its one summary of the checked records instead
    (steps/ingest_billing.py)."""
    raw = billing.read_billing_files(spark, [path for r in runs for path, _ in r.blobs])
    if raw is None:
        return None, runs
    return billing.with_run_facts(spark, raw, runs)
