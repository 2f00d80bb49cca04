"""Export runs as a Spark frame: each blob's run facts, and which run of a (scope, month) is
the one that counts (exports.py describes the rule)."""

from __future__ import annotations

from datetime import UTC

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger.ingest.exports import DATASET_RANK, ExportRun
from inference_ledger.spark import local_frame

RUN_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType(), False),
        T.StructField("export_name", T.StringType(), False),
        T.StructField("scope_id", T.StringType(), False),
        T.StructField("billing_month", T.StringType(), False),
        T.StructField("period_start", T.DateType(), False),
        T.StructField("period_end", T.DateType(), False),  # exclusive
        T.StructField("run_id", T.StringType(), False),
        T.StructField("submitted_at", T.TimestampType(), False),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("rejected_reason", T.StringType(), True),
        # The manifest's exportConfig.dataVersion (or FOCUS metadata FocusVersion); None when
        # the delivery does not say.
        T.StructField("data_version", T.StringType(), True),
        T.StructField("dataset_status", T.StringType(), False),  # provisional | final
        T.StructField("dataset", T.StringType(), False),  # ActualCost | FocusCost
    ]
)


def runs_frame(spark: SparkSession, runs: list[ExportRun]) -> DataFrame:
    rows = [
        (
            r.source,
            r.export_name,
            r.scope_id,
            r.billing_month,
            r.period_start,
            r.period_end,
            r.run_id,
            r.submitted_at.astimezone(UTC).replace(tzinfo=None),
            str(path),
            r.rejected_reason,
            r.data_version,
            r.dataset_status,
            r.dataset,
        )
        for r in runs
        for path, _ in r.blobs
    ]
    return local_frame(spark, rows, RUN_SCHEMA)


def with_current_run(runs: DataFrame) -> DataFrame:
    """Flag `is_current_run`: the newest submitted, not rejected run of each (scope, month),
    of its FocusCost export where the scope has one for the month, else of its ActualCost."""
    per_run = runs.select(
        "scope_id", "billing_month", "run_id", "submitted_at", "rejected_reason", "dataset"
    ).distinct()
    ok = per_run.filter(F.col("rejected_reason").isNull())
    preference = F.create_map(*[F.lit(x) for kv in DATASET_RANK.items() for x in kv])
    ranked = ok.withColumn(
        "_rank",
        F.row_number().over(
            Window.partitionBy("scope_id", "billing_month").orderBy(
                F.coalesce(preference[F.col("dataset")], F.lit(len(DATASET_RANK))),
                F.col("submitted_at").desc(),
                F.col("run_id").desc(),
            )
        ),
    )
    # Run ids are unique only within a scope and month: FOCUS folder runs are named by their
    # folder (`run-1`, a date), so a join on run_id alone multiplied rows across scopes.
    key = ["scope_id", "billing_month", "run_id"]
    current = ranked.select(*key, (F.col("_rank") == 1).alias("is_current_run"))
    current_dataset = ranked.filter(F.col("_rank") == 1).select(
        "scope_id", "billing_month", F.col("dataset").alias("current_dataset")
    )
    return (
        runs.join(current, key, how="left")
        .join(current_dataset, ["scope_id", "billing_month"], how="left")
        .withColumn("is_current_run", F.coalesce(F.col("is_current_run"), F.lit(False)))
    )
