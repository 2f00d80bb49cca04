"""Suites on the canonical lake tables, run on Spark DataFrames before anything is aggregated.

Each table's frame is the lake table (partitioned ones limited to the run's range) plus the
derived `dq_*` columns (null on a good row, else naming what is wrong) computed by pure
DataFrame transforms: GX then counts them in the same Spark session. A frame is narrowed to the columns checked and cached for
the validation, so the table is read once however many expectations there are (a large table
with a compound key twice: its key's hashes are counted first, `key_hash_shared`).
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from inference_ledger import contracts, lake
from inference_ledger.ingest.records import key_hash, key_window
from inference_ledger.ingest.usage import NATURAL_KEY as USAGE_KEY
from inference_ledger.ingest.usage import NEWER_FIELDS as NEWER_USAGE_TOKENS
from inference_ledger.quality.config import QualityConfig
from inference_ledger.quality.iso4217 import CURRENCIES
from inference_ledger.quality.runner import Suite, SuiteOutcome, gx_module, run_frame_suites

# table -> (unique key, columns that must not be null, currency columns, money columns).
LAKE_CHECKS: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {
    # A cost export may carry identical lines legitimately, so billing lines have no key.
    "billing_lines": (
        [],
        ["billing_month", "scope_id", "usage_date", "billing_currency", "billed_cost_usd"],
        ["billing_currency"],
        ["billed_cost", "billed_cost_usd"],
    ),
    "usage_facts": (USAGE_KEY, ["channel", "bucket_start_at", "usage_date"], [], []),
    "revenue_lines": (["entry_id"], ["entry_id", "revenue_date"], ["currency"], ["amount_usd"]),
    "settlements": (
        ["statement_id"],
        ["statement_id", "agreement_id"],
        ["currency"],
        ["amount_usd"],
    ),
    "contract_terms": (
        ["agreement_id", "direction", "effective_from"],
        ["rate"],
        ["cap_currency"],
        [],
    ),
    "fx_rates": (["currency", "rate_date"], ["usd_per_unit"], ["currency"], []),
    "prices": (
        ["channel", "model", "token_type", "effective_from"],
        ["unit_price"],
        ["currency"],
        [],
    ),
}
TOKEN_COLUMNS = [
    "input_tokens",
    "input_cached_tokens",
    "output_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
    # Newer usage fields (ingest/usage.py): null when a result did not report them, which the
    # bound check lets pass.
    *NEWER_USAGE_TOKENS,
    "input_uncached_audio_tokens",
    "num_model_requests",
]
FRESHNESS_SUITE = "lake.freshness"
# Parquet bytes of a ranged table from which its compound key is first proved unique by its
# hashes (`key_hash_shared`): at 10M usage facts (328 MB) that and the frame take ~18 s against
# ~26 s with the window; on a small quarter's lake (~1 MB) the extra job costs ~0.5 s more.
KEY_HASH_MIN_BYTES = 32 << 20


def _violations(checks: list[tuple[Column, Column]]) -> Column:
    """Null when every (ok, label) holds, else the labels of those that do not, joined by
    '; '. A condition that is null (a null input) counts as holding: nulls are the
    `required` check's business."""
    return F.nullif(F.concat_ws("; ", *[F.when(~ok, label) for ok, label in checks]), F.lit(""))


def _not_nullable(table: str, columns: list[str]) -> list[str]:
    """Key columns the lake contract requires (a usage bucket's user_id may be null)."""
    nullable = {c.name for c in contracts.columns("lake", table) if c.nullable}
    return [c for c in columns if c not in nullable]


def _shown(column: str) -> Column:
    return F.concat(F.lit(f"{column}="), F.col(column).cast("string"))


def with_row_checks(df: DataFrame, table: str, cfg: QualityConfig) -> DataFrame:
    """One `dq_*` column per multi-column check, null on a good row and naming the offending
    columns and values otherwise: GX then needs one Spark job per check, not per column."""
    key, required, _, money = LAKE_CHECKS[table]
    flags = {}
    if key:
        flags["dq_key_missing"] = [
            (F.col(c).isNotNull(), F.lit(f"{c} is null")) for c in _not_nullable(table, key)
        ]
    rest = [c for c in required if c not in key]
    if rest:
        flags["dq_required_missing"] = [(F.col(c).isNotNull(), F.lit(f"{c} is null")) for c in rest]
    bound = F.lit(cfg.max_abs_amount)  # a Decimal literal: compared exactly
    amounts = [(F.abs(F.col(c)) <= bound, _shown(c)) for c in money]
    if table == "fx_rates":
        rate = F.col("usd_per_unit")
        amounts.append(((rate > 0) & (rate <= bound), _shown("usd_per_unit")))
    if amounts:
        flags["dq_amount_out_of_bounds"] = amounts
    if table == "usage_facts":
        top = F.lit(cfg.max_tokens)
        flags["dq_tokens_out_of_bounds"] = [
            (F.col(c).between(F.lit(0), top), _shown(c)) for c in TOKEN_COLUMNS
        ]
    if table == "billing_lines":
        flags["dq_charge_outside_billing_period"] = [(_charge_accounted(), _charge_period())]
    for name, checks in flags.items():
        df = df.withColumn(name, _violations(checks))
    if table == "billing_lines":
        # A failure names the line's file (and source line where the table keeps it).
        where = _line_origin(df)
        for name in flags:
            df = df.withColumn(name, F.concat(where, F.col(name)))
    return df


def with_key_duplicates(df: DataFrame, key: list[str]) -> DataFrame:
    """`dq_key_duplicate`: null unless another row has the same key (nulls equal), then how many
    rows share it and the key's values.

    GX's compound-uniqueness check counts over a window partitioned by a struct of the key: at
    10M usage facts it sorted and shuffled ten string and timestamp columns (~12 s), and caching
    the key columns for it cost ~17 s more. Here rows are counted over `records.key_window`
    (hash of the key, then the key: exact, and a long sorts fast); the key columns are not kept
    for GX afterwards."""
    copies = F.count(F.lit(1)).over(key_window(key))
    label = F.concat(
        F.lit("key shared by "),
        copies.cast("string"),
        F.lit(" rows: "),
        F.concat_ws(
            " ",
            *[
                F.concat(F.lit(f"{c}="), F.coalesce(F.col(c).cast("string"), F.lit("null")))
                for c in key
            ],
        ),
    )
    return df.withColumn("dq_key_duplicate", F.when(copies > 1, label))


def key_hash_shared(df: DataFrame, key: list[str]) -> bool:
    """Whether two rows of `df` have the same `records.key_hash` of `key` (`key_window`'s too).
    Rows with the same key (nulls equal) always do, so False proves the key unique: one job
    that shuffles a long per row, where `with_key_duplicates` sorts every row's key (10M usage
    facts in a fresh JVM: ~11 s + ~7 s for the frame, against ~26 s with the window). True (a
    repeated key, or two keys that only share a hash) leaves the exact count to
    `with_key_duplicates`. The hashes are partitioned before they are counted: nearly all are
    distinct, so a map-side partial count would only copy its input (11.9 s -> 10.6 s)."""
    hashes = (
        df.select(key_hash(key).alias("_key_hash"))
        .repartition("_key_hash")
        .groupBy("_key_hash")
        .count()
    )
    return not hashes.filter(F.col("count") > 1).isEmpty()


def with_no_key_duplicates(df: DataFrame) -> DataFrame:
    """`dq_key_duplicate` of a frame whose key `key_hash_shared` proved unique."""
    return df.withColumn("dq_key_duplicate", F.lit(None).cast("string"))


def _line_origin(df: DataFrame) -> Column:
    line = (
        F.concat(F.lit(":"), F.col("line_number").cast("string"))
        if "line_number" in df.columns
        else F.lit("")
    )
    return F.concat(
        F.coalesce(F.col("source_file"), F.lit("?")), F.coalesce(line, F.lit("")), F.lit(": ")
    )


def _charge_accounted() -> Column:
    """What FOCUS requires of a charge period (ChargePeriodStart / ChargePeriodEnd present, the
    start inclusive and the exclusive end after it), and that the line is accounted
    (`usage_date`) inside the billing month it was invoiced in (`billing_month` YYYY-MM). The
    charge period itself may outlast the month: an upfront 1-year purchase, a correction of an
    earlier month. A missing value fails."""
    month_start = F.to_date(F.concat(F.col("billing_month"), F.lit("-01")))
    ok = (
        (F.col("charge_period_start") < F.col("charge_period_end"))
        & (F.col("usage_date") >= month_start)
        & (F.col("usage_date") < F.add_months(month_start, 1))
    )
    return F.coalesce(ok, F.lit(False))


def _charge_period() -> Column:
    return F.concat_ws(
        " ",
        F.concat(F.lit("billing_month="), F.coalesce(F.col("billing_month"), F.lit("null"))),
        F.concat(
            F.lit("usage_date="), F.coalesce(F.col("usage_date").cast("string"), F.lit("null"))
        ),
        F.concat(
            F.lit("charge_period="),
            F.coalesce(F.col("charge_period_start").cast("string"), F.lit("null")),
        ),
        F.lit(".."),
        F.coalesce(F.col("charge_period_end").cast("string"), F.lit("null")),
    )


# check name and description of each dq_* column.
ROW_CHECKS = {
    "dq_key_duplicate": ("keys", "no two rows share the table's key"),
    "dq_key_missing": ("keys", "key columns not null"),
    "dq_required_missing": ("required", "required columns not null"),
    "dq_amount_out_of_bounds": ("amount_bounds", "money within the configured bound"),
    "dq_tokens_out_of_bounds": ("token_bounds", "token and request counts within [0, bound]"),
    "dq_charge_outside_billing_period": (
        "charge_in_billing_period",
        "charge period well formed (start before its exclusive end) and the line accounted "
        "(usage_date) inside its billing month",
    ),
}


def with_freshness(
    billing_lines: DataFrame, usage_facts: DataFrame, as_of: date | None
) -> DataFrame:
    """One row per billing scope and usage channel: its newest usage date and how many days it
    lags the reference (`as_of`, or else the newest usage date of any feed)."""
    billing = billing_lines.groupBy(
        F.concat_ws(":", F.lit("billing"), "provider_name", "scope_id").alias("feed")
    ).agg(F.max("usage_date").alias("last_usage_date"))
    usage = usage_facts.groupBy(F.concat_ws(":", F.lit("usage"), "channel").alias("feed")).agg(
        F.max("usage_date").alias("last_usage_date")
    )
    feeds = billing.unionByName(usage)
    reference = F.lit(as_of) if as_of else F.max("last_usage_date").over(Window.partitionBy())
    return feeds.withColumn("reference_date", reference).select(
        "feed",
        "last_usage_date",
        "reference_date",
        F.datediff("reference_date", "last_usage_date").alias("lag_days"),
    )


def table_suite(table: str, cfg: QualityConfig) -> Suite:
    E = gx_module().expectations
    key, _, currencies, _ = LAKE_CHECKS[table]
    exps = []
    if len(key) == 1:
        exps.append(E.ExpectColumnValuesToBeUnique(column=key[0], meta=cfg.meta("keys")))
    for column in currencies:
        exps.append(
            E.ExpectColumnValuesToBeInSet(
                column=column, value_set=sorted(CURRENCIES), meta=cfg.meta("currency_iso")
            )
        )
    for column, (check, description) in ROW_CHECKS.items():
        if column in row_check_columns(table):
            exps.append(
                E.ExpectColumnValuesToBeNull(
                    column=column, description=description, meta=cfg.meta(check)
                )
            )
    if table == "usage_facts":
        exps.append(
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="input_tokens",
                column_B="input_cached_tokens",
                or_equal=True,
                # The rule compares two present counts: Spark skips a row with one side null by
                # default, GX's pandas engine only when told (quality/runner.py LOCAL_MAX_ROWS).
                ignore_row_if="either_value_is_missing",
                description="input_cached_tokens <= input_tokens (input includes cached)",
                meta=cfg.meta("cached_within_input", column="input_cached_tokens"),
            )
        )
    return Suite(f"lake.{table}", exps)


def freshness_suite(cfg: QualityConfig) -> Suite:
    E = gx_module().expectations
    return Suite(
        FRESHNESS_SUITE,
        [
            E.ExpectColumnValuesToBeBetween(
                column="lag_days",
                min_value=0,
                max_value=cfg.max_freshness_lag_days,
                description="no billing scope or usage channel without new data for longer "
                "than the configured lag",
                meta=cfg.meta("freshness"),
            )
        ],
    )


def row_check_columns(table: str) -> list[str]:
    key, required, _, money = LAKE_CHECKS[table]
    present = {
        "dq_key_duplicate": len(key) > 1,
        "dq_key_missing": bool(_not_nullable(table, key)),
        "dq_required_missing": bool([c for c in required if c not in key]),
        "dq_amount_out_of_bounds": bool(money) or table == "fx_rates",
        "dq_tokens_out_of_bounds": table == "usage_facts",
        "dq_charge_outside_billing_period": table == "billing_lines",
    }
    return [c for c in ROW_CHECKS if present[c]]


def table_frame(
    df: DataFrame, table: str, cfg: QualityConfig, *, key_unique: bool = False
) -> DataFrame:
    """The columns a table's suite reads: a one-column key, currencies and `dq_*` checks (a
    compound key is checked in `dq_key_duplicate`, without a window when the caller proved it
    unique by `key_hash_shared`)."""
    key, _, currencies, _ = LAKE_CHECKS[table]
    extra = ["input_tokens", "input_cached_tokens"] if table == "usage_facts" else []
    single = key if len(key) == 1 else []
    cols = list(dict.fromkeys([*single, *currencies, *extra, *row_check_columns(table)]))
    checked = with_row_checks(df, table, cfg)
    if len(key) > 1:
        checked = (
            with_no_key_duplicates(checked) if key_unique else with_key_duplicates(checked, key)
        )
    return checked.select(*cols)


def _key_proved_unique(spark: SparkSession, lake_dir, table: str, df: DataFrame) -> bool:
    """A compound key proved unique by its hashes, in a table of KEY_HASH_MIN_BYTES or more."""
    key = LAKE_CHECKS[table][0]
    if len(key) < 2 or lake.table_bytes(spark, lake_dir, table) < KEY_HASH_MIN_BYTES:
        return False
    return not key_hash_shared(df, key)


def lake_frames(
    spark: SparkSession, lake_dir, start: date, end: date, as_of: date | None, cfg: QualityConfig
) -> dict[str, DataFrame]:
    """suite name -> frame: every canonical table (billing and usage in [start, end))."""
    frames = {}
    for table in LAKE_CHECKS:
        df = lake.read_table(spark, lake_dir, table)
        # The run's range of the tables that grow with usage; a large one's compound key
        # (usage facts') is first proved unique by its hashes where it can be.
        ranged = table in ("billing_lines", "usage_facts")
        if ranged:
            df = df.filter(
                (F.col("usage_date") >= F.lit(start)) & (F.col("usage_date") < F.lit(end))
            )
        unique = ranged and _key_proved_unique(spark, lake_dir, table, df)
        frames[f"lake.{table}"] = table_frame(df, table, cfg, key_unique=unique)
    frames[FRESHNESS_SUITE] = with_freshness(
        lake.read_table(spark, lake_dir, "billing_lines"),
        lake.read_table(spark, lake_dir, "usage_facts"),
        as_of,
    )
    return frames


def suites_for(cfg: QualityConfig) -> dict[str, Suite]:
    suites = {f"lake.{t}": table_suite(t, cfg) for t in LAKE_CHECKS}
    suites[FRESHNESS_SUITE] = freshness_suite(cfg)
    return suites


def validate_frames(frames: dict[str, DataFrame], suites: dict[str, Suite]) -> list[SuiteOutcome]:
    cached = {name: df.cache() for name, df in frames.items()}
    try:
        return run_frame_suites([(suites[name], df) for name, df in cached.items()])
    finally:
        for df in cached.values():
            df.unpersist()


def validate_lake(
    spark: SparkSession,
    lake_dir,
    start: date,
    end: date,
    as_of: date,
    cfg: QualityConfig | None = None,
) -> list[SuiteOutcome]:
    cfg = cfg or QualityConfig.load()
    reference = as_of if cfg.freshness_reference == "as_of" else None
    frames = lake_frames(spark, lake_dir, start, end, reference, cfg)
    return validate_frames(frames, suites_for(cfg))
