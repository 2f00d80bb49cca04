"""Usage-API pages (channels `openai`, `azure_openai`) -> deduplicated usage facts.

One record per bucket result. Redelivered pages and overlapping pulls are deduplicated on
the bucket's natural key; a redelivery with different numbers keeps the newest pull and the
older one is recorded as superseded. docs/usage.md describes the format and these rules.

Token fields (OpenAI's completions usage object, current reference):
- `input_tokens`: every input token -- uncached, cached and written to the cache, text, audio
  and image; `input_cached_tokens` the cached ones; `output_tokens` every output token.
- Newer pulls split them: `input_uncached_tokens` (uncached, cache writes excluded),
  `input_cache_write_tokens` (30-minute) and `input_cache_write_12h_tokens`, and by modality
  the uncached `input_text_tokens` / `input_image_tokens` / `input_audio_tokens`, the cached
  `input_cached_{text,image,audio}_tokens`, and `output_{text,image,audio}_tokens`.
- `input_audio_tokens` changed meaning: it counted cached audio too until the modality split
  arrived, and counts uncached audio only in results that carry it. A result is read as
  *split* when any of MODALITY_FIELDS is present (not null); the cache-write and
  `input_uncached_tokens` fields say nothing about audio and do not decide it.

Lake totals (usage_facts), so that no token is counted twice:
- `input_tokens`, `input_cached_tokens`, `output_tokens`, `num_model_requests`: as delivered
  (`input_cached_tokens` absent or null = 0: the reference types it optional).
  input_tokens - input_cached_tokens is what is not read from the cache (cache writes
  included); input_tokens + output_tokens is the total. Nothing else is ever added to them:
  every other token column is a breakdown (a part) of one of them.
- `input_audio_tokens` = all audio input, cached included (the column's meaning since it was
  added): a pre-split result's delivered value; a split result's delivered (uncached) value +
  `input_cached_audio_tokens`. Absent or null counts 0 (no audio reported), as before.
- `input_uncached_audio_tokens` = a split result's delivered `input_audio_tokens`; null for a
  pre-split result (its cached share is unknown).
- `output_audio_tokens`: as delivered, absent = 0. Every other newer field: as delivered, absent
  or null = null (unknown, which is not zero: a pre-split result did not say).

Checks (quarantined, naming the field): a negative value of any token field; cached > input;
uncached + cached + cache writes > input; on split results the uncached text + image + audio >
input_uncached_tokens, cached text + image + audio > input_cached_tokens, and text + image +
audio output > output_tokens. Sums treat an absent part as 0 (the known parts must fit). Every
delivered token field is part of the numbers a redelivery is compared on.

Partial pulls (`partial_pulls`): see its docstring and docs/usage.md.
"""

from __future__ import annotations

import operator
from functools import reduce
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from inference_ledger import contracts
from inference_ledger.ingest import records as R
from inference_ledger.ingest.usage_pulls import Delivery, unanswered_warnings

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
    # Newer pulls can group by api_source: two results differing only in it are both real.
    "api_source",
]
DIMENSIONS = ["project_id", "model", "batch", "service_tier", "user_id", "api_key_id", "api_source"]
REQUIRED_MEASURES = ["input_tokens", "output_tokens", "num_model_requests"]
# Pages from before the API reported audio (and results with no audio) omit these or send null:
# no audio tokens, so they are kept as 0 rather than quarantined.
AUDIO_MEASURES = ["input_audio_tokens", "output_audio_tokens"]
# OpenAI's reference types input_cached_tokens Optional (only input_tokens, output_tokens and
# num_model_requests are required): absent or null, no input is known to be read from the
# cache, so it counts 0 -- input_tokens (cached included) and the total are unchanged.
ZERO_WHEN_ABSENT = ["input_cached_tokens", *AUDIO_MEASURES]
# Present in results that split input and output by modality: input_audio_tokens is then
# uncached audio only.
MODALITY_FIELDS = [
    "input_text_tokens",
    "input_image_tokens",
    "input_cached_text_tokens",
    "input_cached_image_tokens",
    "input_cached_audio_tokens",
    "output_text_tokens",
    "output_image_tokens",
]
CACHE_WRITE_FIELDS = ["input_cache_write_tokens", "input_cache_write_12h_tokens"]
NEWER_FIELDS = ["input_uncached_tokens", *CACHE_WRITE_FIELDS, *MODALITY_FIELDS]
MEASURES = REQUIRED_MEASURES + ZERO_WHEN_ABSENT + NEWER_FIELDS
USAGE_COLUMNS = [c.name for c in contracts.columns("lake", "usage_facts")]
_PATH_RE = r"/usage/([^/]+)/(\d{4}-\d{2}-\d{2})/[^/]+$"
_AUDIO_TOTAL = "_input_audio_total"


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
    """One row per bucket result; a malformed page stays as one row so it can be quarantined.
    Token fields as delivered, except that absent audio and cached tokens count 0 (see the
    module docstring). A bucket's results are `results` as the API sends them, or `result`,
    the name OpenAI's published schema and SDK models gave the field (a pull saved from an
    SDK model dump)."""
    buckets = pages.select("*", F.explode_outer("data").alias("_bucket")).select(
        "*", F.explode_outer(F.coalesce("_bucket.results", "_bucket.result")).alias("_result")
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
        *[F.coalesce(r[c], F.lit(0).cast("long")).alias(c) for c in ZERO_WHEN_ABSENT],
        *[r[c].alias(c) for c in NEWER_FIELDS],
        *[r[c].alias(c) for c in DIMENSIONS],
    )


def _parts(columns: list[str]) -> Column:
    """The sum of the parts that are present: an absent part adds nothing."""
    total = F.lit(0).cast("long")
    for c in columns:
        total = total + F.coalesce(F.col(c), F.lit(0).cast("long"))
    return total


def _is_split() -> Column:
    return reduce(operator.or_, [F.col(c).isNotNull() for c in MODALITY_FIELDS])


def _token_bound_checks() -> list[tuple[Column, str, str]]:
    """Breakdowns that exceed what they break down (after the negatives were checked)."""
    split = _is_split()
    uncached_parts = ["input_text_tokens", "input_image_tokens", "input_audio_tokens"]
    uncached = F.coalesce(
        F.col("input_uncached_tokens"), F.when(split, _parts(uncached_parts)), F.lit(0)
    )
    return [
        (
            F.col("input_cached_tokens") > F.col("input_tokens"),
            "input_cached_tokens",
            "cached tokens exceed input tokens",
        ),
        (
            uncached + F.col("input_cached_tokens") + _parts(CACHE_WRITE_FIELDS)
            > F.col("input_tokens"),
            "input_uncached_tokens",
            "uncached, cached and cache-write input tokens exceed input tokens",
        ),
        (
            split & (_parts(uncached_parts) > F.col("input_uncached_tokens")),
            "input_text_tokens",
            "uncached text, image and audio input tokens exceed input_uncached_tokens",
        ),
        (
            split
            & (
                _parts(
                    [
                        "input_cached_text_tokens",
                        "input_cached_image_tokens",
                        "input_cached_audio_tokens",
                    ]
                )
                > F.col("input_cached_tokens")
            ),
            "input_cached_text_tokens",
            "cached text, image and audio input tokens exceed input_cached_tokens",
        ),
        (
            split
            & (
                _parts(["output_text_tokens", "output_image_tokens", "output_audio_tokens"])
                > F.col("output_tokens")
            ),
            "output_text_tokens",
            "text, image and audio output tokens exceed output_tokens",
        ),
    ]


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
        *_token_bound_checks(),
    ]
    rows = R.with_first_failure(rows, checks).withColumns(
        {
            "bucket_start_at": F.timestamp_seconds("start_time"),
            "bucket_end_at": F.timestamp_seconds("end_time"),
        }
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
    return rows.withColumns({"status": status, "reason": why}).withColumn(
        "field", F.when(~valid, F.col("_field"))
    )


def with_audio_normalised(rows: DataFrame) -> DataFrame:
    """The lake's audio input columns from either meaning of `input_audio_tokens` (module
    docstring); the delivered value stays in `input_audio_tokens` for the raw record."""
    split = _is_split()
    cached_audio = F.coalesce(F.col("input_cached_audio_tokens"), F.lit(0).cast("long"))
    return rows.withColumns(
        {
            _AUDIO_TOTAL: F.when(split, F.col("input_audio_tokens") + cached_audio).otherwise(
                F.col("input_audio_tokens")
            ),
            "input_uncached_audio_tokens": F.when(split, F.col("input_audio_tokens")),
        }
    )


def usage_records(pages: DataFrame) -> DataFrame:
    rows = (
        pages.transform(with_results_exploded)
        .transform(with_usage_status)
        .transform(with_audio_normalised)
        .withColumns(
            {
                "usage_date": F.to_date("bucket_start_at"),
                "usage_month": F.date_format("bucket_start_at", "yyyy-MM"),
                "source_run_id": F.lit(None).cast("string"),
            }
        )
    )
    raw_cols = [
        "page_object",
        "bucket_object",
        "start_time",
        "end_time",
        "result_object",
        *MEASURES,
        *DIMENSIONS,
        R.CORRUPT,
    ]
    records = R.finish_records(
        rows,
        SOURCE,
        [*USAGE_COLUMNS, _AUDIO_TOTAL],
        raw_cols,
        F.col("status"),
        F.col("reason"),
        F.col("field"),
    )
    # The lake's input_audio_tokens is the normalised total; the raw record kept the delivered.
    return records.withColumn("input_audio_tokens", F.col(_AUDIO_TOTAL)).drop(_AUDIO_TOTAL)


# ---------------------------------------------------------------- partial pulls


def partial_pulls(files: list[Path]) -> dict[str, str]:
    """{file: warning} for each file holding the last page that arrived of a partial pull.

    The API pages a pull: a page with `has_more: true` hands out a `next_page` cursor, the next
    request passes it as `page`, and the page that answers does not repeat the cursor. So a
    delivery shows the continuation by position: the next line of the same `.jsonl`; after a
    file's last page, the first page of the next-numbered file of the same name in the same
    folder. A page whose text was delivered before (earlier in delivery order, anywhere in
    `files`) is a redelivered copy, never a continuation. A page with has_more=true is answered
    when its continuation arrived, or when another page in its folder with the same cursor was
    (the original of a copy). Otherwise the pull is partial: the file that first delivered the
    unanswered cursor is flagged by name (its copies, if any, are not flagged again).
    """
    answered, unanswered = Delivery.of(files).cursors()
    return unanswered_warnings(answered, unanswered)
