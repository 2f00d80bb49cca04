"""The pipeline's steps. Each does its own I/O (landing, lake, Postgres) around pure transforms;
the CLI, the Spark job entry points in jobs/ and the Airflow DAG all call these."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from inference_ledger import lake
from inference_ledger.ingest import billing, exports, finance, usage
from inference_ledger.ingest import records as R
from inference_ledger.ingest.landing import named, nothing_to_ingest, unclaimed
from inference_ledger.periods import Quarter, quarters_between
from inference_ledger.run import plan
from inference_ledger.settings import Settings, load_settings
from inference_ledger.workload import WorkloadRules

log = logging.getLogger(__name__)

# What `ingest` can be limited to (RunContext.sources), one per ingest DAG. FX rates belong to
# both `finance` and `billing`: billing amounts convert with the rates delivered with them.
SOURCES = ("billing", "usage", "finance")
SOURCE_FEEDS = {
    "billing": ("fx",),
    "usage": (),
    "finance": ("fx", "prices", "contracts", "revenue", "settlements", "commitments"),
}

# Inputs every period's figures rest on whatever their dates (rates, prices, terms,
# commitments).
EVERY_PERIOD_INPUTS = ("fx", "prices", "contracts", "commitments", "contract_commitments")

MARTS = (
    "inference_spend_daily",
    "unit_cost_monthly",
    "unit_margin_monthly",
    "commitment_burndown",
    "quarterly_forecast",
    "cap_projection",
    "revshare_reconciliation",
    "quarterly_summary",
)


@dataclass
class RunContext:
    run_id: str
    landing: Path
    start: date | None = None  # inclusive; None = from the data
    end: date | None = None  # exclusive; None = from the data
    as_of: date = field(default_factory=lambda: datetime.now(UTC).date())
    settings: Settings = field(default_factory=load_settings)
    billing_control_totals: list[dict] = field(default_factory=list)
    # path -> sha256 of files a succeeded run already ingested (incremental billing ingest).
    known_files: dict[str, str] = field(default_factory=dict)
    # billing month -> why it was not loaded (e.g. a missing FX rate); the run fails at the end.
    failed_months: dict[str, list[str]] = field(default_factory=dict)
    # The sources `ingest` reads (SOURCES); the rest of the landing folder is left for later.
    sources: tuple[str, ...] = SOURCES
    # Seconds each part of the ingest took (`ingest.finance`, `.billing`, `.usage`): the
    # benchmark reports them, and they show in logs where a slow night went.
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def lake_dir(self) -> Path:
        return self.settings.lake_dir


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"run-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


# ---------------------------------------------------------------- ingest


# Where each source's rows say which month they belong to and what money they carry: the
# quarantine shows per period the rows and dollars at stake (marts.period_quarantine).
_MONTH_COLUMNS = ("billing_month", "usage_month", "revenue_date", "period_start")
_AMOUNT_COLUMNS = (("billed_cost", "billing_currency"), ("amount", "currency"))


def _month_of(records: DataFrame):
    """YYYY-MM of each row, or None for a source that is not month-specific (FX, prices,
    contract terms: every period rests on them)."""
    for name in _MONTH_COLUMNS:
        if name in records.columns:
            col = F.col(name)
            return col if name.endswith("_month") else F.date_format(col, "yyyy-MM")
    return None


def _money_of(records: DataFrame, month) -> tuple:
    """(amount, currency) columns of the money at stake in a row, typed for the quarantine."""
    if month is not None:
        for amount, currency in _AMOUNT_COLUMNS:
            if amount in records.columns and currency in records.columns:
                return F.col(amount).cast("decimal(38,10)"), F.col(currency).cast("string")
    return F.lit(None).cast("decimal(38,10)"), F.lit(None).cast("string")


def _account(
    spark: SparkSession, ctx: RunContext, name: str, records: DataFrame, files: list[Path]
) -> list[dict]:
    """Per-file counts (including empty files) and the quarantine, kept under the run."""
    month = _month_of(records)
    counts = {r["source_file"]: r.asDict() for r in R.file_counts(records, month).collect()}
    source_name = next(iter(counts.values()))["source"] if counts else name
    quarantined = sum(int(r[f"rows_{R.QUARANTINED}"]) for r in counts.values())
    out = []
    for path in files:
        row = counts.pop(str(path), None) or {
            "source": source_name,
            "source_file": str(path),
            "rows_read": 0,
            **{f"rows_{s}": 0 for s in R.STATUSES},
        }
        row["is_every_period"] = month is None and name in EVERY_PERIOD_INPUTS
        if month is not None:
            row.setdefault(f"months_{R.LOADED}", [])
            row.setdefault(f"months_{R.QUARANTINED}", [])
        row["checksum_sha256"] = R.sha256_file(path)
        row["byte_count"] = path.stat().st_size
        out.append(row)
    if counts:  # a record whose file was not in the list would be lost from the audit
        raise RuntimeError(f"{name}: records from unlisted files {sorted(counts)[:3]}")
    if quarantined:  # each Spark job costs a fixed fraction of a second: none for nothing
        amount, currency = _money_of(records, month)
        quarantine = records.filter(F.col("status") == R.QUARANTINED).select(
            "source",
            "source_file",
            "line_number",
            "field",
            "reason",
            "raw_record",
            (month if month is not None else F.lit(None).cast("string")).alias("period_month"),
            amount.alias("amount"),
            currency.alias("currency"),
        )
        path = lake.run_path(ctx.lake_dir, ctx.run_id, "quarantine")
        quarantine.write.mode("append").parquet(path)
    return out


def _loaded(records: DataFrame) -> DataFrame:
    return records.filter(F.col("status") == R.LOADED)


def ingest(spark: SparkSession, ctx: RunContext, rules: WorkloadRules | None = None) -> list[dict]:
    """Landing -> lake for every source. Returns per-file accounting rows."""
    try:
        return _ingest(spark, ctx, rules)
    except Exception as exc:
        unreadable = R.input_error_from_spark(exc)
        if unreadable is not None:
            raise unreadable from exc
        raise


def _ingest(spark: SparkSession, ctx: RunContext, rules: WorkloadRules | None) -> list[dict]:
    rules = rules or WorkloadRules.load()
    landing = ctx.landing
    if not landing.is_dir():
        raise R.InputError(f"landing folder {landing} does not exist")
    accounting: list[dict] = []

    unknown = sorted(set(ctx.sources) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown ingest sources {unknown}: expected some of {SOURCES}")
    feeds = {f for source in ctx.sources for f in SOURCE_FEEDS[source]}
    # Export runs are found by their manifests (any depth) before anything is read: a full
    # ingest of a landing with nothing ingestible stops here, saying what the landing holds.
    # (Unchanged files count as found: an incremental night with nothing new is no error.)
    all_runs = exports.discover_runs(landing) if "billing" in ctx.sources else []
    if set(ctx.sources) == set(SOURCES) and not (
        all_runs
        or usage.usage_files(landing)
        or any(finance.feed_files(landing, name) for name in feeds)
    ):
        raise nothing_to_ingest(landing)

    clock = time.perf_counter()
    finance_unchanged = _finance_unchanged(ctx)

    # FX first: every other money column converts with it.
    def feed(name: str, table: str, build) -> DataFrame | None:
        if name not in feeds:
            return None
        files = finance.feed_files(landing, name)
        if finance_unchanged and lake.exists(spark, lake.table_path(ctx.lake_dir, table)):
            accounting.extend(_skipped(f"finance.{name}", files, ctx.known_files))
            return lake.read_table(spark, ctx.lake_dir, table)
        rows = finance.read_feed(spark, landing, name)
        if rows is None:
            accounting.extend(_account(spark, ctx, name, _empty_records(spark), files))
            return None
        records = build(rows).persist()
        accounting.extend(_account(spark, ctx, name, records, files))
        loaded = _loaded(records)
        lake.write_table(loaded, ctx.lake_dir, table)
        records.unpersist()
        return lake.read_table(spark, ctx.lake_dir, table)

    fx = feed(
        "fx",
        "fx_rates",
        lambda r: finance.simple_records(
            r, "fx", "fx_rates", ["currency", "rate_date"], ["usd_per_unit"]
        ),
    )
    if fx is None:
        fx = lake.read_table(spark, ctx.lake_dir, "fx_rates")
    feed(
        "prices",
        "prices",
        lambda r: finance.simple_records(
            r,
            "prices",
            "prices",
            ["channel", "model", "token_type", "effective_from"],
            ["unit_price", "unit_tokens", "currency", "effective_to"],
        ),
    )
    terms = feed(
        "contracts",
        "contract_terms",
        lambda r: finance.simple_records(
            r,
            "contracts",
            "contract_terms",
            ["agreement_id", "direction", "effective_from"],
            [
                "basis",
                "rate",
                "effective_to",
                "cap_amount",
                "tolerance_abs",
                "tolerance_pct",
                "payment_terms_days",
            ],
        ),
    )
    if terms is not None:
        overlaps = finance.contract_overlaps(terms)
        if overlaps:
            raise R.InputError("finance/contracts: " + "; ".join(overlaps))
    feed(
        "revenue",
        "revenue_lines",
        lambda r: _checked_fx(
            finance.revenue_records(r, fx), "finance/revenue", "currency", "revenue_date"
        ),
    )
    feed(
        "settlements",
        "settlements",
        lambda r: _checked_fx(
            finance.settlement_records(r, fx), "finance/settlements", "currency", "statement_date"
        ),
    )
    feed(
        "commitments",
        "commitments",
        lambda r: _checked_fx(
            finance.commitment_records(r, fx), "finance/commitments", "currency", "start_date"
        ),
    )

    clock = _lap(ctx, "ingest.finance", clock)
    # Exports of other datasets (amortized cost, price sheets, reservations) are named, not read.
    accounting.extend(
        named(p, run.source, run.not_read_reason)
        for run in all_runs
        if run.not_read_reason
        for p in run.claimed_files
    )
    commitment_runs = [r for r in all_runs if r.dataset == exports.CONTRACT_COMMITMENT]
    cost_runs = [r for r in all_runs if not r.not_read_reason and r not in commitment_runs]
    # Billing: month-to-date runs of every dialect; the newest good run per (scope, month) wins.
    runs, skipped = _unchanged_billing_months(spark, ctx, cost_runs)
    accounting.extend(skipped)
    # The CSV is parsed once: the row-count check, the line numbers and the records all read
    # this cache.
    raw = billing.read_billing_files(spark, [p for r in runs for p, _ in r.blobs])
    if raw is not None:
        raw = raw.persist()
        rows, runs = billing.with_run_facts(spark, raw, runs)
    for run in runs:
        if run.rejected_reason:
            log.warning(
                "billing run %s (%s) rejected: %s",
                run.run_id,
                run.billing_month,
                run.rejected_reason,
            )
    if raw is not None:
        records = _fail_months_without_fx(ctx, billing.billing_records(rows, fx, rules).persist())
        raw.unpersist()
        files = [p for r in runs for p, _ in r.blobs]
        accounting.extend(_account(spark, ctx, "billing", records, files))
        lake.write_table(_loaded(records), ctx.lake_dir, "billing_lines")
        _billing_control_totals(spark, ctx, records)
        records.unpersist()

    if "billing" in ctx.sources:
        accounting.extend(_contract_commitments(spark, ctx, commitment_runs, fx))
    clock = _lap(ctx, "ingest.billing", clock)
    files = usage.usage_files(landing) if "usage" in ctx.sources else []
    cached, records, files, skipped = _usage_records(spark, ctx, files)
    accounting.extend(skipped)
    if records is not None:
        accounting.extend(_flag_partial_pulls(_account(spark, ctx, "usage", records, files)))
        lake.write_table(_loaded(records), ctx.lake_dir, "usage_facts")
        cached.unpersist()
    _lap(ctx, "ingest.usage", clock)
    # Every other file under the landing folder is named (accounting row + log warning).
    claimed = {r["source_file"] for r in accounting}
    claimed |= {str(p) for r in all_runs for p in r.claimed_files}
    accounting.extend(unclaimed(landing, claimed, ctx.sources))
    return accounting


def _contract_commitments(
    spark: SparkSession, ctx: RunContext, runs: list[exports.ExportRun], fx: DataFrame
) -> list[dict]:
    """FOCUS Contract Commitment deliveries -> lake `contract_commitments`. Every delivery is
    read again each run (a few rows): the newest one of a commitment must win, and a row that
    waited for its FX rate loads once the rate is there."""
    from inference_ledger.ingest import contract_commitments as CC

    rows = CC.read_rows(spark, runs)
    if rows is None:
        if runs:
            return _account(spark, ctx, CC.LAKE_TABLE, _empty_records(spark), CC.files_of(runs))
        return []
    records = CC.commitment_records(rows, fx).persist()
    accounting = _account(spark, ctx, CC.LAKE_TABLE, records, CC.files_of(runs))
    lake.write_table(_loaded(records), ctx.lake_dir, CC.LAKE_TABLE)
    records.unpersist()
    return accounting


def _lap(ctx: RunContext, name: str, since: float) -> float:
    now = time.perf_counter()
    ctx.timings[name] = round(now - since, 3)
    log.info("%s: %.1f s", name, now - since)
    return now


def _finance_unchanged(ctx: RunContext) -> bool:
    """Incremental ingest: the finance tables in the lake are current (run/plan.py)."""
    if not ctx.known_files:
        return False
    root = ctx.landing / "finance"
    current = {str(p): R.sha256_file(p) for p in root.glob("*/*") if p.is_file()}
    return plan.finance_unchanged(str(root), current, ctx.known_files)


def _skipped(source: str, files: list[Path], sums: dict[str, str]) -> list[dict]:
    """Accounting rows of files not read again (their rows were counted when first read)."""
    return [
        {
            "source": source,
            "source_file": str(p),
            "rows_read": 0,
            **{f"rows_{s}": 0 for s in R.STATUSES},
            "checksum_sha256": sums.get(str(p)) or R.sha256_file(p),
            "byte_count": p.stat().st_size,
            "is_skipped": True,
        }
        for p in files
    ]


def _flag_partial_pulls(rows: list[dict]) -> list[dict]:
    """Name each usage file that ends a partial pull (`warning`, kept in audit.input_files):
    its rows load -- they are real usage -- but the pull is never taken as complete. The files
    read are whole months of day folders, so every page a chain could continue with is here."""
    warnings = usage.partial_pulls([Path(r["source_file"]) for r in rows])
    for row in rows:
        warning = warnings.get(row["source_file"])
        if warning:
            row["warning"] = warning
            log.warning("%s: %s", row["source_file"], warning)
    return rows


def _usage_records(
    spark: SparkSession, ctx: RunContext, files: list[Path]
) -> tuple[DataFrame | None, DataFrame | None, list[Path], list[dict]]:
    """Usage records to load: (cached frame to unpersist, records, files read, skipped files).

    Incremental: only the usage months that new or changed files touch are read and rewritten
    (the lake is partitioned by month; dynamic overwrite replaces just those). To dedupe such a
    month completely it re-reads every file that fed its lake partition (`source_file`) and
    every file in its day folders; files of other months are recorded as skipped. Rows of
    re-read files that fall in other months are left out (they are in the lake already)."""
    plan = _usage_months_to_read(spark, ctx, files)
    if plan is not None:
        read, skipped, months, new = plan
        pages = usage.read_pages(spark, read)
        if pages is None:
            return None, None, read, skipped
        cached = usage.usage_records(pages).persist()
        month = F.col("usage_month")
        stray = cached.filter(F.col("source_file").isin(new) & ~month.isin(months))
        if stray.limit(1).count() == 0:
            return cached, cached.filter(month.isNull() | month.isin(months)), read, skipped
        cached.unpersist()
        log.info("usage: new files hold buckets outside the months they touch; reading all")
    pages = usage.read_pages(spark, files)
    if pages is None:
        return None, None, files, []
    cached = usage.usage_records(pages).persist()
    return cached, cached, files, []


def _usage_months_to_read(
    spark: SparkSession, ctx: RunContext, files: list[Path]
) -> tuple[list[Path], list[dict], list[str], list[str]] | None:
    """(files to read, skipped accounting rows, months to rewrite, new files), or None to read
    everything (a first or `--full` run); decided by run/plan.py."""
    if not ctx.known_files or not files:
        return None
    sums = {str(p): R.sha256_file(p) for p in files}
    todo = plan.usage_months_to_rewrite([str(p) for p in files], sums, ctx.known_files)
    if todo is None:
        return None
    fed = set()
    if todo.months:
        fed = {
            r[0]
            for r in lake.read_table(spark, ctx.lake_dir, "usage_facts")
            .filter(F.col("usage_month").isin(list(todo.months)))
            .select("source_file")
            .distinct()
            .collect()
        }
    wanted = set(plan.usage_files_to_read([str(p) for p in files], todo, fed))
    read = [p for p in files if str(p) in wanted]
    skipped = _skipped(usage.SOURCE, [p for p in files if str(p) not in wanted], sums)
    return read, skipped, list(todo.months), list(todo.new)


def _unchanged_billing_months(
    spark: SparkSession, ctx: RunContext, runs: list[exports.ExportRun]
) -> tuple[list[exports.ExportRun], list[dict]]:
    """Incremental ingest: a billing month whose every blob (all scopes, all runs) a succeeded
    run already ingested with the same checksum, and whose lake partition exists, is not read
    again. Its files are recorded as skipped (no rows counted twice)."""
    if not ctx.known_files or not runs:
        return runs, []
    in_lake = {
        r[0]
        for r in lake.read_table(spark, ctx.lake_dir, "billing_lines")
        .select("billing_month")
        .distinct()
        .collect()
    }
    sums = {str(p): R.sha256_file(p) for r in runs for p, _ in r.blobs}
    by_month: dict[str, list[exports.ExportRun]] = {}
    for r in runs:
        by_month.setdefault(r.billing_month, []).append(r)
    months = [
        plan.BillingMonth(
            month,
            tuple(str(p) for r in month_runs for p, _ in r.blobs),
            any(r.missing_blobs for r in month_runs),
        )
        for month, month_runs in sorted(by_month.items())
    ]
    skip = plan.billing_months_to_skip(months, sums, ctx.known_files, in_lake)
    keep = [r for r in runs if r.billing_month not in skip]
    skipped = []
    for r in runs:
        if r.billing_month in skip:
            for path, _ in r.blobs:
                skipped.append(
                    {
                        "source": r.source,
                        "source_file": str(path),
                        "rows_read": 0,
                        **{f"rows_{s}": 0 for s in R.STATUSES},
                        "checksum_sha256": sums[str(path)],
                        "byte_count": path.stat().st_size,
                        "is_skipped": True,
                    }
                )
    return keep, skipped


def _billing_control_totals(spark: SparkSession, ctx: RunContext, records: DataFrame) -> None:
    """Loaded input rows vs what the lake holds for the months written, per currency."""
    loaded = _loaded(records)
    months = [r[0] for r in loaded.select("billing_month").distinct().collect()]
    key = ["billing_month", "billing_currency"]
    inp = loaded.groupBy(*key).agg(
        F.count(F.lit(1)).alias("rows_loaded"),
        F.sum("billed_cost").alias("billed_cost_in"),
        F.sum("billed_cost_usd").alias("billed_cost_usd"),
    )
    out = (
        lake.read_table(spark, ctx.lake_dir, "billing_lines")
        .filter(F.col("billing_month").isin(months))
        .groupBy(*key)
        .agg(F.sum("billed_cost").alias("billed_cost_lake"))
    )
    totals = [r.asDict() for r in inp.join(out, key, how="full").collect()]
    wrong = [t for t in totals if t["billed_cost_in"] != t["billed_cost_lake"]]
    if wrong:
        raise RuntimeError(f"billing control totals differ between input and lake: {wrong[:3]}")
    ctx.billing_control_totals = totals


def _fail_months_without_fx(ctx: RunContext, records: DataFrame) -> DataFrame:
    """A billing month with a line lacking an FX rate is not loaded (its lake partition, and so
    its published figures, stay as they were); its rows are quarantined with the currency and
    date named, the other months go on, and the run fails at the end (`failed_months`).
    `records` comes cached; what is returned is cached (`records` itself, or a cached copy
    with those months quarantined, `records` then released)."""
    missing = (
        records.filter((F.col("status") == R.LOADED) & F.col("fx_rate").isNull())
        .groupBy("billing_month", "billing_currency", "usage_date")
        .count()
        .orderBy("billing_month", "billing_currency", "usage_date")
        .collect()
    )
    if not missing:
        return records
    cached = records
    for r in missing:
        ctx.failed_months.setdefault(r["billing_month"], []).append(
            f"no FX rate to USD for {r['billing_currency']} on {r['usage_date']}"
        )
    reasons = {m: "; ".join(v[:5]) for m, v in ctx.failed_months.items()}
    reason_of = F.create_map(*[F.lit(x) for kv in reasons.items() for x in kv])
    failed = (F.col("status") == R.LOADED) & F.col("billing_month").isin(list(reasons))
    out = (
        records.withColumn(
            "reason",
            F.when(
                failed,
                F.concat(F.lit("billing month not loaded: "), reason_of[F.col("billing_month")]),
            ).otherwise(F.col("reason")),
        )
        .withColumn("status", F.when(failed, F.lit(R.QUARANTINED)).otherwise(F.col("status")))
        .persist()
    )
    out.count()
    cached.unpersist()
    return out


def _checked_fx(records: DataFrame, what: str, currency_col: str, date_col: str) -> DataFrame:
    from inference_ledger.fx import require_fx

    require_fx(records.filter(F.col("status") == R.LOADED), what, currency_col, date_col)
    return records


def _empty_records(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [],
        "source string, source_file string, line_number long, status string, reason string,"
        " field string, raw_record string",
    )


# ---------------------------------------------------------------- aggregate + reconcile

CLOSED_PERIODS_OUTPUT = "closed_periods"


def resolve_range(spark: SparkSession, ctx: RunContext) -> tuple[date, date]:
    """The run's period, widened to whole calendar quarters (the marts' coarsest grain)."""
    start, end = ctx.start, ctx.end
    if start is None or end is None:
        bounds = []
        for table, col in (
            ("billing_lines", "usage_date"),
            ("revenue_lines", "revenue_date"),
            ("usage_facts", "usage_date"),
        ):
            row = lake.read_table(spark, ctx.lake_dir, table).agg(F.min(col), F.max(col)).first()
            if row[0] is not None:
                bounds.append((row[0], row[1]))
        if not bounds:
            raise R.InputError(f"no billing, revenue or usage data in the lake {ctx.lake_dir}")
        start = start or min(b[0] for b in bounds)
        end = end or date.fromordinal(max(b[1] for b in bounds).toordinal() + 1)
    quarters = quarters_between(start, end)
    return quarters[0].start, quarters[-1].end


def aggregate(spark: SparkSession, ctx: RunContext, url: str | None = None) -> dict[str, int]:
    """Lake -> the four marts for the run's quarters, written under the run for publishing.

    Reads the closed periods from the database (`url`, default the configured one): a late
    change to a closed quarter becomes a prior-period adjustment row in the first open quarter
    after it. If the run's last quarter is closed and such a change exists, the run extends to
    the next open quarter so the adjustment has somewhere to go."""
    from inference_ledger import close as closing
    from inference_ledger.db import connect, database_url
    from inference_ledger.transform import reconcile, spend, summary

    start, end = resolve_range(spark, ctx)
    revenue = lake.read_table(spark, ctx.lake_dir, "revenue_lines")
    settlements = lake.read_table(spark, ctx.lake_dir, "settlements")
    terms = lake.read_table(spark, ctx.lake_dir, "contract_terms")
    prices = lake.read_table(spark, ctx.lake_dir, "prices")
    # The estimate of the reported basis reads the partner channel's usage of every period
    # (closed ones are recomputed to find late changes).
    resale_usage = lake.read_table(spark, ctx.lake_dir, "usage_facts").filter(
        F.col("channel") == reconcile.USAGE_CHANNEL
    )
    price_errors = finance.price_sheet_errors(prices, resale_usage, terms)
    if price_errors:
        raise R.InputError("finance/prices: " + "; ".join(price_errors[:10]))

    # Caps accumulate over all history, so reconcile from the first term, then keep the range.
    first = terms.agg(F.min("effective_from")).first()[0] or start
    earliest = min(first, start)
    conn = connect(url or database_url(ctx.settings))
    try:
        state = closing.load_closed_state(conn)
        pairs, extra = closing.adjustment_blocks(
            quarters_between(start, end), state.closed, Quarter.of(earliest)
        )
        targets = sorted({t for t, _ in pairs})
        changed = [
            (target, source, entry)
            for target in targets
            for source, entry in closing.changed_inputs(
                conn, ctx.run_id, [c for t, c in pairs if t == target]
            )
        ]
    finally:
        conn.close()
    horizon = extra.end if extra is not None and extra.end > end else end
    all_periods = reconcile.periods_frame(spark, earliest, horizon)
    rec_all = reconcile.revshare_reconciliation(
        terms, revenue, settlements, all_periods, ctx.as_of, resale_usage, prices
    ).persist()
    adjustments = None
    if pairs:
        from inference_ledger import contracts

        mart_schema = contracts.spark_schema("marts", "revshare_reconciliation")
        nullable = mart_schema.__class__(
            [f.__class__(f.name, f.dataType, True) for f in mart_schema.fields]
        )
        adjustments = reconcile.prior_period_adjustments(
            rec_all,
            spark.createDataFrame(state.frozen, nullable),
            spark.createDataFrame(pairs, "target_period string, corrected_period string"),
            all_periods,
            spark.createDataFrame(changed, "target_period string, source string, entry string"),
        ).persist()
        if extra is not None and adjustments.filter(F.col("period_label") == extra.label).count():
            log.warning(
                "late changes to closed period(s) before %s: the run extends to %s to post them",
                extra.label,
                extra.label,
            )
            end = extra.end
    in_range = lambda c: (F.col(c) >= F.lit(start)) & (F.col(c) < F.lit(end))  # noqa: E731
    billing = lake.read_table(spark, ctx.lake_dir, "billing_lines").filter(in_range("usage_date"))
    usage_facts = lake.read_table(spark, ctx.lake_dir, "usage_facts").filter(in_range("usage_date"))
    periods = reconcile.periods_frame(spark, start, end)
    daily = spend.inference_spend_daily(billing)
    unit = spend.unit_cost_monthly(usage_facts, billing, prices)
    for r in spend.unpriced_usage(usage_facts, prices).orderBy("usage_month").collect()[:20]:
        log.warning(
            "unit cost: %s %s %s has %s tokens with no USD price in effect; weighed by the"
            " allocation fallback (config/unit_cost_allocation.yaml)",
            r["usage_month"], r["channel"], r["model"], r["unpriced_tokens"],
        )  # fmt: skip
    rec = rec_all.join(periods.select("period_label"), "period_label", how="left_semi")
    if adjustments is not None:
        rec = rec.unionByName(
            adjustments.join(periods.select("period_label"), "period_label", how="left_semi")
        )
    quarterly = summary.quarterly_summary(periods, daily, rec)
    unit_margin, revenue_totals = _unit_margin(
        unit, usage_facts, prices, revenue.filter(in_range("revenue_date")),
        settlements.filter(in_range("period_start")), terms,
    )  # fmt: skip
    counts = {}
    for name, df in (
        ("inference_spend_daily", daily),
        ("unit_cost_monthly", unit),
        ("unit_margin_monthly", unit_margin),
        ("commitment_burndown", _burndown(spark, ctx, start, end)),
        *_outlook(spark, ctx, rec_all, terms, earliest, start, end),
        ("revshare_reconciliation", rec),
        ("quarterly_summary", quarterly),
    ):
        lake.write_run_output(df, ctx.lake_dir, ctx.run_id, f"marts/{name}")
        counts[name] = lake.read_run_output(
            spark, ctx.lake_dir, ctx.run_id, f"marts/{name}"
        ).count()
    rec_all.unpersist()
    if adjustments is not None:
        adjustments.unpersist()
    lake.write_run_output(
        spark.createDataFrame([(start, end)], "start date, end date"),
        ctx.lake_dir,
        ctx.run_id,
        "range",
    )
    # Publish refuses to go ahead if periods were closed or reopened since (see publish.py).
    lake.write_run_output(
        spark.createDataFrame([(label,) for label in state.closed], "period_label string"),
        ctx.lake_dir,
        ctx.run_id,
        CLOSED_PERIODS_OUTPUT,
    )
    _control_totals(spark, ctx, billing, start, end, revenue_totals)
    return counts


def _unit_margin(
    unit: DataFrame,
    usage_facts: DataFrame,
    prices: DataFrame,
    revenue: DataFrame,
    settlements: DataFrame,
    terms: DataFrame,
) -> tuple[DataFrame, DataFrame]:
    """marts.unit_margin_monthly of the run's months (revenue lines and statements of the
    run's range), and the first-party revenue per month it must add up to."""
    from inference_ledger.transform import margin, spend

    rule = margin.MarginRule.load()
    weights = spend.usage_weights(usage_facts, prices)
    df = margin.unit_margin_monthly(unit, weights, revenue, settlements, terms, rule)
    return df, margin.first_party_revenue(revenue, rule)


def _burndown(spark: SparkSession, ctx: RunContext, start: date, end: date) -> DataFrame:
    """marts.commitment_burndown of the run's months, for the finance feed's commitments and
    the bill's own (FOCUS Contract Commitment dataset): consumption accumulates from each
    term's start, so the bill is read from the earliest one (not only the run's range)."""
    from inference_ledger.transform import commitment

    commitments = commitment.binding_commitments(
        lake.read_table(spark, ctx.lake_dir, "commitments"),
        lake.read_table(spark, ctx.lake_dir, "contract_commitments"),
    )
    first = commitments.agg(F.min("start_date")).first()[0] or start
    billing = lake.read_table(spark, ctx.lake_dir, "billing_lines").filter(
        (F.col("usage_date") >= F.lit(min(first, start))) & (F.col("usage_date") < F.lit(end))
    )
    return commitment.commitment_burndown(commitments, billing, start, end)


def _outlook(
    spark: SparkSession,
    ctx: RunContext,
    rec_all: DataFrame,
    terms: DataFrame,
    earliest: date,
    start: date,
    end: date,
) -> list[tuple[str, DataFrame]]:
    """The projection marts made from each quarter of the run: the forecast from the history
    of every quarter up to it (lake billing and the reconciliation since the first term), and
    the cap projection of every capped agreement."""
    from inference_ledger.transform import outlook, reconcile

    billing = lake.read_table(spark, ctx.lake_dir, "billing_lines").filter(
        F.col("usage_date") < F.lit(end)
    )
    first = billing.agg(F.min("usage_date")).first()[0] or earliest
    history_rec = rec_all.filter(F.col("period_start") < F.lit(end))
    periods = reconcile.periods_frame(spark, min(first, earliest), end)
    history = outlook.metric_history(periods, billing, history_rec)
    return [
        ("quarterly_forecast", outlook.quarterly_forecast(history, terms, start, end)),
        ("cap_projection", outlook.cap_projection(history_rec, terms, start, end)),
    ]


def _control_totals(
    spark: SparkSession,
    ctx: RunContext,
    billing: DataFrame,
    start: date,
    end: date,
    first_party_revenue: DataFrame | None = None,
) -> None:
    """Lake-side totals the staged marts must tie out to, per period and currency: billed
    cost per month (inference_spend_daily) and the first-party revenue per month the unit
    margin allocates (unit_margin_monthly; margin.first_party_revenue)."""
    spend = billing.groupBy(F.date_format("usage_date", "yyyy-MM").alias("period_label")).agg(
        F.sum("billed_cost_usd").alias("amount"), F.count(F.lit(1)).alias("row_count")
    )
    parts = [("inference_spend_daily", spend)]
    if first_party_revenue is not None:
        revenue = first_party_revenue.select(
            F.date_format("usage_month", "yyyy-MM").alias("period_label"),
            F.col("_amount").alias("amount"),
            F.lit(1).alias("row_count"),
        )
        parts.append(("unit_margin_monthly", revenue))
    totals = [
        df.select(
            F.lit(table).alias("table_name"),
            "period_label",
            F.lit("USD").alias("currency"),
            F.col("amount").cast("decimal(38,10)").alias("amount"),
            F.col("row_count").cast("long").alias("row_count"),
        )
        for table, df in parts
    ]
    out = totals[0] if len(totals) == 1 else totals[0].unionByName(totals[1])
    lake.write_run_output(out, ctx.lake_dir, ctx.run_id, "control_totals")


def closed_periods_used(spark: SparkSession, ctx: RunContext) -> list[str] | None:
    """The closed periods the run's aggregate step worked with (None for an older run)."""
    path = lake.run_path(ctx.lake_dir, ctx.run_id, CLOSED_PERIODS_OUTPUT)
    if not lake._exists(spark, path):
        return None
    return sorted(r["period_label"] for r in spark.read.parquet(path).collect())


def run_range(spark: SparkSession, ctx: RunContext) -> tuple[date, date]:
    row = lake.read_run_output(spark, ctx.lake_dir, ctx.run_id, "range").first()
    return row["start"], row["end"]


def quarter_labels(start: date, end: date) -> list[str]:
    return [q.label for q in quarters_between(start, end)]


__all__ = ["MARTS", "Quarter", "RunContext", "aggregate", "ingest", "new_run_id", "resolve_range"]
