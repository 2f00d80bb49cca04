"""Suites on the canonical lake tables, run on Spark DataFrames before anything is aggregated.

Each table's frame is the lake table (partitioned ones limited to the run's range) plus the
derived `is_*` columns some checks need, computed by pure DataFrame transforms: GX then counts
them in the same Spark session. A frame is narrowed to the columns checked and cached for
the validation, so the table is read once however many expectations there are.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from inference_ledger import lake
from inference_ledger.ingest.usage import NATURAL_KEY as USAGE_KEY
from inference_ledger.quality.config import QualityConfig
from inference_ledger.quality.iso4217 import CURRENCIES
from inference_ledger.quality.runner import Suite, SuiteOutcome, gx_module, run_spark_suites
from inference_ledger.transform.contract import ratio

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
TOKEN_COLUMNS = ["input_tokens", "input_cached_tokens", "output_tokens", "num_model_requests"]
FRESHNESS_SUITE = "lake.freshness"
QUARANTINE_SUITE = "ingest.input_files"


def _meta(cfg: QualityConfig, check: str, **extra) -> dict:
    return {"check": check, "severity": cfg.severity(check), **extra}


def with_charge_period_check(billing_lines: DataFrame) -> DataFrame:
    """is_charge_in_billing_period: the charge period lies inside its export's billing month
    (`billing_month` YYYY-MM, UTC; the period end is exclusive)."""
    month_start = F.to_date(F.concat(F.col("billing_month"), F.lit("-01")))
    inside = (
        (F.col("charge_period_start") >= month_start.cast("timestamp"))
        & (F.col("charge_period_end") <= F.add_months(month_start, 1).cast("timestamp"))
        & (F.col("charge_period_start") < F.col("charge_period_end"))
    )
    return billing_lines.withColumn("is_charge_in_billing_period", F.coalesce(inside, F.lit(False)))


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


def with_quarantine_rate(files: DataFrame) -> DataFrame:
    """quarantine_rate = rows quarantined / rows read per file (0 for an empty file)."""
    return files.withColumn(
        "quarantine_rate",
        F.coalesce(ratio(F.col("rows_quarantined"), F.col("rows_read")), F.lit(0)).cast(
            "decimal(18,10)"
        ),
    )


def table_suite(table: str, cfg: QualityConfig) -> Suite:
    E = gx_module().expectations
    key, required, currencies, money = LAKE_CHECKS[table]
    exps = []
    if len(key) == 1:
        exps.append(E.ExpectColumnValuesToBeUnique(column=key[0], meta=_meta(cfg, "keys")))
    elif key:
        exps.append(E.ExpectCompoundColumnsToBeUnique(column_list=key, meta=_meta(cfg, "keys")))
    for column in required:
        check = "keys" if column in key else "required"
        exps.append(E.ExpectColumnValuesToNotBeNull(column=column, meta=_meta(cfg, check)))
    for column in currencies:
        exps.append(
            E.ExpectColumnValuesToBeInSet(
                column=column, value_set=sorted(CURRENCIES), meta=_meta(cfg, "currency_iso")
            )
        )
    bound = float(cfg.max_abs_amount)  # a sanity bound, not money: GX compares it as given
    for column in money:
        exps.append(
            E.ExpectColumnValuesToBeBetween(
                column=column, min_value=-bound, max_value=bound, meta=_meta(cfg, "amount_bounds")
            )
        )
    if table == "fx_rates":
        exps.append(
            E.ExpectColumnValuesToBeBetween(
                column="usd_per_unit",
                min_value=0,
                strict_min=True,
                max_value=bound,
                meta=_meta(cfg, "amount_bounds"),
            )
        )
    if table == "billing_lines":
        exps.append(
            E.ExpectColumnValuesToBeInSet(
                column="is_charge_in_billing_period",
                value_set=[True],
                description="charge period inside the billing period of its export",
                meta=_meta(cfg, "charge_in_billing_period"),
            )
        )
    if table == "usage_facts":
        for column in TOKEN_COLUMNS:
            exps.append(
                E.ExpectColumnValuesToBeBetween(
                    column=column,
                    min_value=0,
                    max_value=cfg.max_tokens,
                    meta=_meta(cfg, "token_bounds"),
                )
            )
        exps.append(
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="input_tokens",
                column_B="input_cached_tokens",
                or_equal=True,
                description="input_cached_tokens <= input_tokens (input includes cached)",
                meta=_meta(cfg, "cached_within_input", column="input_cached_tokens"),
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
                meta=_meta(cfg, "freshness"),
            )
        ],
    )


def quarantine_suite(cfg: QualityConfig) -> Suite:
    E = gx_module().expectations
    return Suite(
        QUARANTINE_SUITE,
        [
            E.ExpectColumnValuesToBeBetween(
                column="quarantine_rate",
                min_value=0,
                max_value=float(cfg.max_quarantine_rate),
                description="share of each input file's rows quarantined",
                meta=_meta(cfg, "quarantine_rate"),
            )
        ],
    )


def table_frame(df: DataFrame, table: str) -> DataFrame:
    """The columns a table's suite reads (and the derived ones it checks)."""
    key, required, currencies, money = LAKE_CHECKS[table]
    extra = []
    if table == "billing_lines":
        df = with_charge_period_check(df)
        extra = ["is_charge_in_billing_period"]
    if table == "usage_facts":
        extra = TOKEN_COLUMNS
    cols = list(dict.fromkeys([*key, *required, *currencies, *money, *extra]))
    return df.select(*cols)


def lake_frames(
    spark: SparkSession, lake_dir, start: date, end: date, as_of: date | None
) -> dict[str, DataFrame]:
    """suite name -> frame: every canonical table (billing and usage in [start, end))."""
    frames = {}
    for table in LAKE_CHECKS:
        df = lake.read_table(spark, lake_dir, table)
        if table in ("billing_lines", "usage_facts"):
            df = df.filter(
                (F.col("usage_date") >= F.lit(start)) & (F.col("usage_date") < F.lit(end))
            )
        frames[f"lake.{table}"] = table_frame(df, table)
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
        return run_spark_suites([(suites[name], df) for name, df in cached.items()])
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
    return validate_frames(lake_frames(spark, lake_dir, start, end, reference), suites_for(cfg))


def validate_input_files(
    spark: SparkSession, accounting: list[dict], cfg: QualityConfig | None = None
) -> list[SuiteOutcome]:
    """The quarantine rate of each file this run read."""
    cfg = cfg or QualityConfig.load()
    rows = [
        (str(r["source"]), str(r["source_file"]), int(r["rows_read"]), int(r["rows_quarantined"]))
        for r in accounting
    ]
    files = spark.createDataFrame(
        rows, "source string, source_file string, rows_read long, rows_quarantined long"
    ).transform(with_quarantine_rate)
    return validate_frames({QUARANTINE_SUITE: files}, {QUARANTINE_SUITE: quarantine_suite(cfg)})
