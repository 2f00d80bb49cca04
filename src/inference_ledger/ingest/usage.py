"""Usage-API pages (channels `openai`, `azure_openai`) -> deduplicated usage facts.

One record per bucket result. Redelivered pages and overlapping pulls are deduplicated on
the bucket's natural key; a redelivery with different numbers keeps the newest pull and the
older one is recorded as superseded.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger import contracts
from inference_ledger.ingest import records as R

SOURCE = "usage"
CHANNELS = ("openai", "azure_openai")
NATURAL_KEY = [
    "channel",
    "bucket_start_at",
    "bucket_end_at",
    "project_id",
    "model",
    "batch",
    "service_tier",
    "user_id",
    "api_key_id",
]
REQUIRED_MEASURES = ["input_tokens", "input_cached_tokens", "output_tokens", "num_model_requests"]
# Pages from before the API reported audio (and results with no audio) omit these or send null:
# no audio tokens, so they are kept as 0 rather than quarantined.
AUDIO_MEASURES = ["input_audio_tokens", "output_audio_tokens"]
MEASURES = REQUIRED_MEASURES + AUDIO_MEASURES
USAGE_COLUMNS = [c.name for c in contracts.columns("lake", "usage_facts")]
_PATH_RE = r"/usage/([^/]+)/(\d{4}-\d{2}-\d{2})/[^/]+$"


def usage_files(landing: Path) -> list[Path]:
    root = landing / "usage"
    pats = ("*.json", "*.jsonl", "*.json.gz", "*.jsonl.gz")
    return sorted(p for pat in pats for p in root.glob(f"*/*/{pat}"))


def read_pages(spark: SparkSession, files: list[Path]) -> DataFrame | None:
    """Pages as delivered: `.json[.gz]` holds one page, `.jsonl[.gz]` one page per line."""
    schema = contracts.spark_nested_schema("inputs", "usage_page")
    schema = schema.add(T.StructField(R.CORRUPT, T.StringType(), True))
    frames = []
    for multiline, group in (
        (True, [str(p) for p in files if ".jsonl" not in p.name]),
        (False, [str(p) for p in files if ".jsonl" in p.name]),
    ):
        if not group:
            continue
        df = (
            spark.read.schema(schema)
            .option("multiLine", multiline)
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", R.CORRUPT)
            .json(group)
        )
        frames.append(
            df.select(
                "*",
                R.file_path_col().alias("source_file"),
                F.col("_metadata.file_modification_time").alias("_pulled_at"),
            )
        )
    return R.union_all(frames)


def with_results_exploded(pages: DataFrame) -> DataFrame:
    """One row per bucket result; a malformed page stays as one row so it can be quarantined."""
    buckets = pages.select("*", F.explode_outer("data").alias("_bucket")).select(
        "*", F.explode_outer("_bucket.results").alias("_result")
    )
    keep = F.col(R.CORRUPT).isNotNull() | F.col("_result").isNotNull() | F.col("_bucket").isNull()
    r, b = F.col("_result"), F.col("_bucket")
    return buckets.filter(keep).select(
        "source_file",
        "_pulled_at",
        F.col(R.CORRUPT),
        F.col("object").alias("page_object"),
        b["object"].alias("bucket_object"),
        b["start_time"].alias("start_time"),
        b["end_time"].alias("end_time"),
        r["object"].alias("result_object"),
        F.regexp_extract("source_file", _PATH_RE, 1).alias("channel"),
        *[r[c].alias(c) for c in REQUIRED_MEASURES],
        *[F.coalesce(r[c], F.lit(0).cast("long")).alias(c) for c in AUDIO_MEASURES],
        *[
            r[c].alias(c)
            for c in ["project_id", "model", "batch", "service_tier", "user_id", "api_key_id"]
        ],
    )


def with_usage_status(rows: DataFrame) -> DataFrame:
    """Quarantine checks, then natural-key dedupe among the valid rows."""
    checks = [
        (F.col(R.CORRUPT).isNotNull(), "", "malformed JSON"),
        (
            F.coalesce(F.col("page_object") != "page", F.lit(True)),
            "object",
            "page object is not `page`",
        ),
        (F.col("bucket_object").isNull(), "data", "page has no buckets"),
        (F.col("bucket_object") != "bucket", "data[].object", "unknown bucket object type"),
        (
            F.coalesce(
                F.col("result_object") != "organization.usage.completions.result", F.lit(True)
            ),
            "results[].object",
            "unknown result object type",
        ),
        (~F.col("channel").isin(*CHANNELS), "channel", "unknown usage channel folder"),
        (
            F.col("start_time").isNull() | F.col("end_time").isNull(),
            "start_time",
            "bucket has no time range",
        ),
        (F.col("end_time") <= F.col("start_time"), "end_time", "bucket end is not after its start"),
        *[(F.col(c).isNull(), c, f"{c} is missing") for c in REQUIRED_MEASURES],
        *[(F.col(c) < 0, c, f"{c} is negative") for c in MEASURES],
        (
            F.col("input_cached_tokens") > F.col("input_tokens"),
            "input_cached_tokens",
            "cached tokens exceed input tokens",
        ),
    ]
    reason, field = R.first_failure(checks)
    rows = (
        rows.withColumn("_reason", reason)
        .withColumn("_field", F.nullif(field, F.lit("")))
        .withColumn("bucket_start_at", F.timestamp_seconds("start_time"))
        .withColumn("bucket_end_at", F.timestamp_seconds("end_time"))
    )
    valid = F.col("_reason").isNull()
    status, why = R.first_wins_status(
        valid,
        NATURAL_KEY,
        [F.col("_pulled_at").desc(), F.col("source_file").desc()],
        MEASURES,
        duplicate_why="redelivered bucket result (same natural key and numbers)",
        superseded_why="conflicting redelivery; the newest pull wins",
    )
    return (
        rows.withColumn("status", status)
        .withColumn("reason", why)
        .withColumn("field", F.when(~valid, F.col("_field")))
    )


def usage_records(pages: DataFrame) -> DataFrame:
    rows = (
        pages.transform(with_results_exploded)
        .transform(with_usage_status)
        .withColumn("usage_date", F.to_date("bucket_start_at"))
        .withColumn("usage_month", F.date_format("bucket_start_at", "yyyy-MM"))
        .withColumn("source_run_id", F.lit(None).cast("string"))
    )
    raw_cols = [
        "page_object",
        "bucket_object",
        "start_time",
        "end_time",
        "result_object",
        *MEASURES,
        "project_id",
        "model",
        "batch",
        "service_tier",
        "user_id",
        "api_key_id",
        R.CORRUPT,
    ]
    return R.finish_records(
        rows, SOURCE, USAGE_COLUMNS, raw_cols, F.col("status"), F.col("reason"), F.col("field")
    )
