"""Finance feeds (DESIGN.md "Exact formats"): revenue ledger, settlements, contracts, FX, prices,
cloud consumption commitments."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from inference_ledger import contracts
from inference_ledger.ingest import records as R
from inference_ledger.ingest.price_sheet_checks import price_gaps, price_overlaps

FEEDS = {
    # feed -> (input contract, folder under finance/)
    "revenue": ("finance_revenue", "revenue"),
    "settlements": ("finance_settlements", "settlements"),
    "contracts": ("finance_contracts", "contracts"),
    "fx": ("finance_fx", "fx"),
    "prices": ("finance_prices", "prices"),
    "commitments": ("finance_commitments", "commitments"),
}

# feed -> (key, the columns whose equality makes a second row of a key an exact duplicate):
# the one statement of each feed's dedupe, for the Spark builders here and the Python ones
# (finance_local_feeds.py).
DEDUPE: dict[str, tuple[list[str], list[str]]] = {
    "fx": (["currency", "rate_date"], ["usd_per_unit"]),
    "prices": (
        ["channel", "model", "token_type", "effective_from"],
        ["unit_price", "unit_tokens", "currency", "effective_to"],
    ),
    "contracts": (
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
    ),  # fmt: skip
    "revenue": (
        ["entry_id"],
        ["entry_version", "revenue_date", "product_line", "amount", "currency"],
    ),
    "settlements": (
        ["statement_id"],
        ["agreement_id", "direction", "period_start", "period_end", "amount", "currency"],
    ),
    "commitments": (
        ["commitment_id"],
        [
            "counterparty",
            "amount",
            "currency",
            "start_date",
            "end_date",
            "eligible_services",
            "eligible_meters",
            "provider",
        ],
    ),  # fmt: skip
}


def feed_files(landing: Path, feed: str) -> list[Path]:
    folder = landing / "finance" / FEEDS[feed][1]
    return sorted([*folder.glob("*.csv"), *folder.glob("*.csv.gz")])


def read_feed(spark: SparkSession, landing: Path, feed: str) -> DataFrame | None:
    contract = FEEDS[feed][0]
    cols = [c.name for c in contracts.columns("inputs", contract)]
    return R.read_csv_by_header(
        spark, feed_files(landing, feed), cols, contracts.required_columns("inputs", contract)
    )


def _typed(rows: DataFrame, contract: str) -> tuple[DataFrame, list[tuple[Column, str, str]]]:
    """Parse every contract column into its typed form; collect the checks that can fail."""
    checks: list[tuple[Column, str, str]] = [
        (F.col(R.CORRUPT).isNotNull(), "", "malformed CSV row (wrong number of fields or quoting)")
    ]
    schema = contracts.load_schema("inputs", contract)
    typed: dict[str, Column] = {}
    for col in contracts.columns("inputs", contract):
        spec = schema["properties"][col.name]
        name = col.name
        if col.kind == "decimal":
            parsed = R.parse_decimal(name, col.precision, col.scale)
            what = "a plain decimal number"
        elif col.kind == "date":
            parsed = R.parse_iso_date(name)
            what = "an ISO date (YYYY-MM-DD)"
        elif col.kind == "integer":
            parsed = R.parse_int(name)
            what = "an integer"
        else:
            parsed = F.nullif(F.trim(F.col(name)), F.lit(""))
            what = None
        if not col.nullable:
            checks.append((R.is_blank(name), name, f"required field {name} is empty"))
        if what:
            checks.append((R.bad_when_present(name, parsed), name, f"{name} is not {what}"))
        if "enum" in spec:
            checks.append(
                (
                    ~R.is_blank(name) & ~parsed.isin(*spec["enum"]),
                    name,
                    f"{name} must be one of {spec['enum']}",
                )
            )
        elif "pattern" in spec and col.kind == "string":
            checks.append(
                (
                    ~R.is_blank(name) & ~parsed.rlike(spec["pattern"]),
                    name,
                    f"{name} does not match {spec['pattern']}",
                )
            )
        if "minimum" in spec:
            checks.append((parsed < spec["minimum"], name, f"{name} is below {spec['minimum']}"))
        typed[f"_t_{name}"] = parsed
    return rows.withColumns(typed), checks


def with_feed_checks(
    rows: DataFrame, contract: str, extra: list[tuple[Column, str, str]] | None = None
) -> DataFrame:
    """Typed columns (replacing the raw strings) + `_reason`/`_field` of the first failed check."""
    typed, checks = _typed(rows, contract)
    raw_cols = [c.name for c in contracts.columns("inputs", contract)]
    # Checks read the raw strings, so they are evaluated before the typed values replace them.
    typed = R.with_first_failure(
        typed.withColumn("raw_record", R.raw_record([*raw_cols, R.CORRUPT])),
        checks + (extra or []),
    )
    return typed.withColumns({c: F.col(f"_t_{c}") for c in raw_cols}).drop(
        *[f"_t_{c}" for c in raw_cols]
    )


def _finish(
    df: DataFrame, source: str, lake_table: str, status: Column, reason: Column
) -> DataFrame:
    cols = [c.name for c in contracts.columns("lake", lake_table)]
    return df.select(
        *[F.col(c) for c in cols if c not in R.ACCOUNTING_COLUMNS],
        F.lit(source).alias("source"),
        F.col("source_file"),
        F.lit(None).cast("long").alias("line_number"),
        status.alias("status"),
        reason.alias("reason"),
        F.when(status == R.QUARANTINED, F.col("_field")).alias("field"),
        F.col("raw_record"),
    )


def revenue_records(rows: DataFrame, fx: DataFrame) -> DataFrame:
    """Highest entry_version of each entry_id wins; lower versions are superseded."""
    from inference_ledger.fx import to_usd, with_fx_rate

    df = with_feed_checks(rows, "finance_revenue")
    valid = F.col("_reason").isNull()
    status, reason = R.first_wins_status(
        valid,
        DEDUPE["revenue"][0],
        [F.col("entry_version").desc(), F.col("source_file")],
        DEDUPE["revenue"][1],
        duplicate_why="exact duplicate of the entry version",
        superseded_why="a higher entry_version supersedes this one",
        conflict_on=["entry_version"],
        conflict_why="conflicting duplicate of the same entry_version",
    )
    df = df.withColumns({"status": status, "reason": reason})
    df = df.withColumn(
        "_field",
        F.when(df.status == R.QUARANTINED, F.coalesce(F.col("_field"), F.lit("entry_version"))),
    )
    df = with_fx_rate(df, fx, "currency", "revenue_date").withColumn("amount_usd", to_usd("amount"))
    df = df.withColumn("source_run_id", F.lit(None).cast("string"))
    return _finish(df, "finance.revenue", "revenue_lines", F.col("status"), F.col("reason"))


def settlement_records(rows: DataFrame, fx: DataFrame) -> DataFrame:
    """A statement named by another's supersedes_statement_id is replaced entirely by it."""
    from inference_ledger.fx import to_usd, with_fx_rate

    df = with_feed_checks(
        rows,
        "finance_settlements",
        [
            (
                F.col("period_end") <= F.col("period_start"),
                "period_end",
                "period_end must be after period_start",
            )
        ],
    )
    valid = F.col("_reason").isNull()
    targets = (
        df.filter(valid & F.col("supersedes_statement_id").isNotNull())
        .select(
            F.col("supersedes_statement_id").alias("_superseded_id"),
            F.col("statement_id").alias("_by"),
        )
        .groupBy("_superseded_id")
        .agg(F.min("_by").alias("_superseded_by"))
    )
    known = df.filter(valid).select(F.col("statement_id").alias("_known_id")).distinct()
    df = (
        df.join(targets, F.col("statement_id") == F.col("_superseded_id"), how="left")
        .join(known, F.col("supersedes_statement_id") == F.col("_known_id"), how="left")
        .withColumn(
            "_reason",
            F.when(
                valid & F.col("supersedes_statement_id").isNotNull() & F.col("_known_id").isNull(),
                F.concat(F.lit("supersedes unknown statement "), F.col("supersedes_statement_id")),
            ).otherwise(F.col("_reason")),
        )
        .withColumn(
            "_field",
            F.when(
                F.col("_reason").isNotNull(), F.coalesce("_field", F.lit("supersedes_statement_id"))
            ),
        )
    )
    valid = F.col("_reason").isNull()
    key, same = DEDUPE["settlements"]
    status, reason = R.first_wins_status(
        valid,
        key,
        [F.col("source_file")],
        same,
        duplicate_why="exact duplicate row",
        superseded_why="conflicting duplicate statement_id",
    )
    status = F.when(valid & F.col("_superseded_by").isNotNull(), F.lit(R.SUPERSEDED)).otherwise(
        status
    )
    reason = F.when(
        valid & F.col("_superseded_by").isNotNull(),
        F.concat(F.lit("superseded by statement "), F.col("_superseded_by")),
    ).otherwise(reason)
    df = df.withColumns({"status": status, "reason": reason})
    df = (
        with_fx_rate(df, fx, "currency", "statement_date")
        .withColumn("amount_usd", to_usd("amount"))
        .withColumn("reported_basis_usd", to_usd("reported_basis_amount"))
        .withColumn("source_run_id", F.lit(None).cast("string"))
    )
    return _finish(df, "finance.settlements", "settlements", F.col("status"), F.col("reason"))


def commitment_records(rows: DataFrame, fx: DataFrame) -> DataFrame:
    """Cloud consumption commitments: a positive amount, a term that ends after it starts,
    something eligible; one row per commitment_id (an exact duplicate is deduplicated, a
    conflicting one quarantined). The amount converts to USD at the rate of start_date."""
    from inference_ledger.fx import to_usd, with_fx_rate

    nothing_eligible = R.is_blank("eligible_services") & R.is_blank("eligible_meters")
    df = with_feed_checks(
        rows,
        "finance_commitments",
        [
            # Typed values (`_t_`): the raw columns are still strings here.
            (F.col("_t_amount") <= 0, "amount", "amount must be greater than 0"),
            (
                F.col("_t_end_date") <= F.col("_t_start_date"),
                "end_date",
                "end_date must be after start_date",
            ),
            (
                nothing_eligible,
                "eligible_services",
                "name eligible_services or eligible_meters (or * for every service)",
            ),
        ],
    )
    valid = F.col("_reason").isNull()
    status, reason = R.first_wins_status(
        valid,
        DEDUPE["commitments"][0],
        [F.col("source_file")],
        DEDUPE["commitments"][1],
        duplicate_why="exact duplicate row",
        superseded_why="conflicting duplicate of ['commitment_id']",
        conflict_on=["commitment_id"],
        conflict_why="conflicting duplicate of ['commitment_id']",
    )
    df = df.withColumns({"status": status, "reason": reason})
    df = df.withColumn(
        "_field",
        F.when(F.col("status") == R.QUARANTINED, F.coalesce("_field", F.lit("commitment_id"))),
    )
    df = (
        with_fx_rate(df, fx, "currency", "start_date")
        .withColumn("amount_usd", to_usd("amount"))
        .withColumn("source_run_id", F.lit(None).cast("string"))
    )
    return _finish(df, "finance.commitments", "commitments", F.col("status"), F.col("reason"))


def simple_records(
    rows: DataFrame, feed: str, lake_table: str, key: list[str], same: list[str]
) -> DataFrame:
    """Contracts, FX, prices: typed, checked, exact duplicates removed, conflicts quarantined."""
    df = with_feed_checks(rows, FEEDS[feed][0])
    valid = F.col("_reason").isNull()
    # A conflicting duplicate is not a newer version here: quarantine it for a person to resolve.
    status, reason = R.first_wins_status(
        valid,
        key,
        [F.col("source_file")],
        same,
        duplicate_why="exact duplicate row",
        superseded_why=f"conflicting duplicate of {key}",
        conflict_on=key,
        conflict_why=f"conflicting duplicate of {key}",
    )
    df = df.withColumns({"status": status, "reason": reason})
    df = df.withColumn(
        "_field", F.when(F.col("status") == R.QUARANTINED, F.coalesce("_field", F.lit(key[0])))
    )
    df = df.withColumn("source_run_id", F.lit(None).cast("string"))
    return _finish(df, f"finance.{feed}", lake_table, F.col("status"), F.col("reason"))


def contract_overlaps(terms: DataFrame) -> list[str]:
    """Overlapping effective windows for one agreement and direction are an error."""
    a, b = terms.alias("a"), terms.alias("b")
    far = F.lit("9999-12-31").cast("date")
    overlap = (
        (F.col("a.agreement_id") == F.col("b.agreement_id"))
        & (F.col("a.direction") == F.col("b.direction"))
        & (F.col("a.effective_from") < F.col("b.effective_from"))
        & (F.coalesce(F.col("a.effective_to"), far) > F.col("b.effective_from"))
    )
    rows = (
        a.join(b, overlap, how="inner")
        .select("a.agreement_id", "a.direction", "a.effective_from", "b.effective_from")
        .collect()
    )
    return [f"agreement {r[0]} ({r[1]}): terms from {r[2]} and {r[3]} overlap" for r in rows]


def price_sheet_errors(prices: DataFrame, usage_facts: DataFrame, terms: DataFrame) -> list[str]:
    """Overlapping prices, then gaps in what the receivable cross-check needs priced."""
    return price_overlaps(prices) or price_gaps(usage_facts, prices, terms)
