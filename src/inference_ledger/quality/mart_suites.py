"""Suites on the staged marts (Postgres `staging`), run after COPY and before the publish.

Row-level rules GX has no built-in for are `UnexpectedRowsExpectation` queries: the rows they
return are the violations (observed value = their count). They name the staging tables
directly (see runner.quiet_gx) and take thresholds from the typed config via psycopg2.sql.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg2 import sql

from inference_ledger import contracts
from inference_ledger.quality.config import QualityConfig
from inference_ledger.quality.runner import (
    Suite,
    SuiteOutcome,
    gx_module,
    quiet_stdout,
    run_sql_suites,
)

STATUSES = [
    "matched",
    "underpaid",
    "overpaid",
    "missing_settlement",
    "unexpected_settlement",
    "pending",
]

MONTH_STATUSES = ["provisional", "final"]

# Money lake = staged, per month and currency (the lake side is staging.control_totals).
CONTROL_TOTALS_SPEND = """
WITH staged AS (
    SELECT to_char(usage_date, 'YYYY-MM') AS period_label, 'USD' AS currency,
           sum(billed_cost_usd) AS amount, count(*) AS row_count
    FROM staging.inference_spend_daily GROUP BY 1, 2
), lake AS (
    SELECT period_label, currency, amount FROM staging.control_totals
    WHERE table_name = 'inference_spend_daily'
)
SELECT coalesce(l.period_label, s.period_label) AS period_label,
       coalesce(l.currency, s.currency) AS currency,
       l.amount AS lake_amount, s.amount AS staged_amount
FROM lake l FULL JOIN staged s USING (period_label, currency)
WHERE l.amount IS DISTINCT FROM s.amount
"""

# The summary's spend per quarter is the staged daily inference spend of that quarter.
CONTROL_TOTALS_SUMMARY = """
WITH daily AS (
    SELECT to_char(usage_date, 'YYYY') || '-Q' || to_char(usage_date, 'Q') AS period_label,
           sum(billed_cost_usd) AS amount
    FROM staging.inference_spend_daily WHERE workload = 'inference' GROUP BY 1
)
SELECT q.period_label, q.inference_spend_usd, coalesce(d.amount, 0) AS daily_amount
FROM staging.quarterly_summary q LEFT JOIN daily d USING (period_label)
WHERE q.inference_spend_usd IS DISTINCT FROM coalesce(d.amount, 0)
"""

# Unit cost: a month's allocations add up exactly to its staged inference spend (exact
# duplicate rows are the keys check's finding, not counted twice here).
CONTROL_TOTALS_UNIT_COST = """
WITH alloc AS (
    SELECT usage_month, sum(allocated_spend_usd) AS allocated
    FROM (SELECT DISTINCT usage_month, channel, model, allocated_spend_usd
          FROM staging.unit_cost_monthly) u
    GROUP BY 1
), daily AS (
    SELECT date_trunc('month', usage_date)::date AS usage_month, sum(billed_cost_usd) AS amount
    FROM staging.inference_spend_daily WHERE workload = 'inference' GROUP BY 1
)
SELECT a.usage_month, a.allocated, coalesce(d.amount, 0) AS daily_amount
FROM alloc a LEFT JOIN daily d USING (usage_month)
WHERE a.allocated IS DISTINCT FROM coalesce(d.amount, 0)
"""

# Unit margin, per month: the rows' inference cost adds up to the staged inference spend
# (months unit cost allocates, as CONTROL_TOTALS_UNIT_COST), and the first-party revenue to the
# lake's revenue ledger (staging.control_totals).
CONTROL_TOTALS_MARGIN_MONTH = """
WITH margin AS (
    SELECT usage_month, sum(inference_cost_usd) AS cost,
           sum(revenue_usd) FILTER (WHERE revenue_basis = 'first_party_revenue') AS revenue
    FROM staging.unit_margin_monthly GROUP BY 1
), daily AS (
    SELECT date_trunc('month', usage_date)::date AS usage_month, sum(billed_cost_usd) AS cost
    FROM staging.inference_spend_daily WHERE workload = 'inference'
      AND date_trunc('month', usage_date)::date IN (SELECT usage_month FROM staging.unit_cost_monthly)
    GROUP BY 1
), lake AS (
    SELECT to_date(period_label, 'YYYY-MM') AS usage_month, amount AS revenue
    FROM staging.control_totals WHERE table_name = 'unit_margin_monthly'
)
SELECT usage_month, m.cost, d.cost AS daily_cost, m.revenue, l.revenue AS lake_revenue
FROM margin m FULL JOIN daily d USING (usage_month) FULL JOIN lake l USING (usage_month)
WHERE coalesce(m.cost, 0) IS DISTINCT FROM coalesce(d.cost, 0)
   OR coalesce(m.revenue, 0) IS DISTINCT FROM coalesce(l.revenue, 0)
"""

# Unit margin, per quarter: revenue share paid and received add up to the settled amounts of
# the reconciliation (its regular rows: statements by the quarter their period starts in).
CONTROL_TOTALS_MARGIN_SHARE = """
WITH margin AS (
    SELECT to_char(usage_month, 'YYYY') || '-Q' || to_char(usage_month, 'Q') AS period_label,
           sum(revshare_paid_usd) AS paid,
           sum(revenue_usd) FILTER (WHERE revenue_basis = 'revshare_received') AS received
    FROM staging.unit_margin_monthly GROUP BY 1
), rec AS (
    SELECT period_label,
           sum(settled_usd) FILTER (WHERE direction = 'payable') AS paid,
           sum(settled_usd) FILTER (WHERE direction = 'receivable') AS received
    FROM staging.revshare_reconciliation WHERE NOT is_adjustment GROUP BY 1
)
SELECT period_label, m.paid, r.paid AS settled_paid, m.received, r.received AS settled_received
FROM margin m FULL JOIN rec r USING (period_label)
WHERE coalesce(m.paid, 0) IS DISTINCT FROM coalesce(r.paid, 0)
   OR coalesce(m.received, 0) IS DISTINCT FROM coalesce(r.received, 0)
"""

MARGIN_ARITHMETIC = """
SELECT usage_month, channel, model, revenue_usd, inference_cost_usd, revshare_paid_usd, margin_usd
FROM staging.unit_margin_monthly
WHERE margin_usd IS DISTINCT FROM revenue_usd - inference_cost_usd - revshare_paid_usd
"""

# Commitment burn-down: remaining = commitment - cumulative, and from one staged month to the
# next of a commitment the cumulative grows by exactly the month's eligible spend.
BURNDOWN_ARITHMETIC = """
WITH rows AS (
    SELECT commitment_id, month_start, commitment_usd, eligible_spend_usd,
           cumulative_consumed_usd, remaining_usd,
           lag(month_start) OVER w AS previous_month,
           lag(cumulative_consumed_usd) OVER w AS previous_cumulative
    FROM staging.commitment_burndown
    WINDOW w AS (PARTITION BY commitment_id ORDER BY month_start)
)
SELECT commitment_id, month_start, commitment_usd, eligible_spend_usd, cumulative_consumed_usd,
       remaining_usd, previous_cumulative
FROM rows
WHERE remaining_usd IS DISTINCT FROM commitment_usd - cumulative_consumed_usd
   OR (previous_month = month_start - interval '1 month'
       AND cumulative_consumed_usd IS DISTINCT FROM previous_cumulative + eligible_spend_usd)
"""

VARIANCE_ARITHMETIC = """
SELECT period_label, agreement_id, direction, settled_usd, expected_usd, variance_usd
FROM staging.revshare_reconciliation
WHERE settled_usd IS NOT NULL
  AND variance_usd IS DISTINCT FROM settled_usd - coalesce(expected_usd, 0)
"""

# expected = basis x rate. The mart's rate is the period's effective rate rounded to 10 places
# (a blend when terms change inside a quarter), and expected is rounded to 10 places, so the
# two may differ by at most |basis| x 0.5e-10 + 0.5e-10. A cap can only lower expected: rows
# whose cap is exhausted need expected <= basis x rate instead.
EXPECTED_ARITHMETIC = """
WITH rows AS (
    SELECT period_label, agreement_id, direction, is_adjustment, basis_usd, rate, expected_usd,
           basis_usd * rate AS product, cap_remaining_usd
    FROM staging.revshare_reconciliation
    WHERE basis_usd IS NOT NULL AND rate IS NOT NULL AND NOT is_adjustment
)
SELECT period_label, agreement_id, direction, basis_usd, rate, expected_usd, product
FROM rows
WHERE expected_usd IS NULL
   OR CASE WHEN cap_remaining_usd = 0
           THEN abs(expected_usd) > abs(product) + abs(basis_usd) * 0.00000000005 + 0.00000000005
           ELSE abs(expected_usd - product) > abs(basis_usd) * 0.00000000005 + 0.00000000005
      END
"""

# Day-over-day: total spend of a day against the day before, both ways.
SPEND_JUMP = """
WITH daily AS (
    SELECT usage_date, sum(billed_cost_usd) AS amount
    FROM staging.inference_spend_daily GROUP BY usage_date
), paired AS (
    SELECT usage_date, amount,
           lag(amount) OVER (ORDER BY usage_date) AS previous,
           lag(usage_date) OVER (ORDER BY usage_date) AS previous_date
    FROM daily
)
SELECT usage_date, previous, amount FROM paired
WHERE previous_date = usage_date - 1 AND previous > 0 AND amount > 0
  AND (amount > previous * {factor} OR previous > amount * {factor})
"""


@dataclass(frozen=True)
class RowRule:
    """An `UnexpectedRowsExpectation`: the rows `query` returns are the violations."""

    check: str
    description: str
    query: str
    column: str
    # The query and description take the configured max_spend_factor as {factor}.
    spend_factor: bool = False


@dataclass(frozen=True)
class ValueSet:
    """`ExpectColumnValuesToBeInSet` on `column`."""

    column: str
    values: list
    check: str = "status_values"
    description: str | None = None


_IS_PROJECTION = ValueSet(
    "is_projection",
    [True],
    description="every row of a projection mart is labelled a projection",
)

# Each mart's own rules, in the order its suite lists them (after the contract's keys and
# required columns).
MART_RULES: dict[str, tuple[RowRule | ValueSet, ...]] = {
    "inference_spend_daily": (
        RowRule(
            "control_totals",
            "control totals: staged billed cost per month and currency equals the lake's",
            CONTROL_TOTALS_SPEND,
            "billed_cost_usd",
        ),
        RowRule(
            "spend_jump",
            "day-over-day total spend within a factor of {factor}",
            SPEND_JUMP,
            "billed_cost_usd",
            spend_factor=True,
        ),
        ValueSet("month_status", MONTH_STATUSES),
    ),
    "unit_cost_monthly": (
        RowRule(
            "control_totals",
            "control totals: a month's unit-cost allocations equal its staged inference spend",
            CONTROL_TOTALS_UNIT_COST,
            "allocated_spend_usd",
        ),
    ),
    "unit_margin_monthly": (
        RowRule(
            "control_totals",
            "control totals: a month's unit-margin cost equals its staged inference spend, its"
            " first-party revenue the revenue ledger",
            CONTROL_TOTALS_MARGIN_MONTH,
            "inference_cost_usd",
        ),
        RowRule(
            "control_totals",
            "control totals: a quarter's unit-margin revenue share paid and received equal the"
            " settled amounts",
            CONTROL_TOTALS_MARGIN_SHARE,
            "revshare_paid_usd",
        ),
        RowRule(
            "control_totals",
            "control totals: margin = revenue - inference cost - revenue share paid, exactly",
            MARGIN_ARITHMETIC,
            "margin_usd",
        ),
        ValueSet("revenue_basis", ["first_party_revenue", "revshare_received", "none"]),
    ),
    "commitment_burndown": (
        RowRule(
            "control_totals",
            "burn-down arithmetic: remaining = commitment - cumulative; cumulative grows by each"
            " month's eligible spend",
            BURNDOWN_ARITHMETIC,
            "cumulative_consumed_usd",
        ),
        ValueSet("projection_status", ["shortfall", "surplus", "met"]),
        ValueSet("consumption_basis", ["ContractApplied", "eligible services and meters"]),
    ),
    "quarterly_forecast": (_IS_PROJECTION,),
    "cap_projection": (_IS_PROJECTION,),
    "quarterly_summary": (
        RowRule(
            "control_totals",
            "control totals: quarterly inference spend equals the staged daily inference spend",
            CONTROL_TOTALS_SUMMARY,
            "inference_spend_usd",
        ),
    ),
    "revshare_reconciliation": (
        RowRule(
            "reconciliation_arithmetic",
            "reconciliation arithmetic: variance = settled - expected, exactly",
            VARIANCE_ARITHMETIC,
            "variance_usd",
        ),
        RowRule(
            "reconciliation_arithmetic",
            "reconciliation arithmetic: expected = basis x rate (capped: at most)",
            EXPECTED_ARITHMETIC,
            "expected_usd",
        ),
        ValueSet("status", STATUSES),
        ValueSet(
            "status",
            ["matched", "pending"],
            check="settlement_status",
            description="settlements match their expectation (or are not due yet)",
        ),
    ),
}


def _contract_expectations(E, mart: str, cfg: QualityConfig) -> list:
    """The mart contract's required columns and its key (not null, unique)."""
    key = contracts.primary_key(mart)
    exps = []
    for c in contracts.columns("marts", mart):
        if not c.nullable:
            check = "keys" if c.name in key else "required"
            exps.append(E.ExpectColumnValuesToNotBeNull(column=c.name, meta=cfg.meta(check)))
    if len(key) == 1:
        exps.append(E.ExpectColumnValuesToBeUnique(column=key[0], meta=cfg.meta("keys")))
    else:
        exps.append(E.ExpectCompoundColumnsToBeUnique(column_list=key, meta=cfg.meta("keys")))
    return exps


def _row_expectation(E, rule: RowRule, cfg: QualityConfig, conn):
    description, query = rule.description, rule.query
    if rule.spend_factor:
        factor = sql.Literal(cfg.max_spend_factor).as_string(conn)
        description = description.format(factor=cfg.max_spend_factor)
        query = sql.SQL(query).format(factor=sql.SQL(factor)).as_string(conn)
    with quiet_stdout():
        return E.UnexpectedRowsExpectation(
            description=description,
            unexpected_rows_query=query,
            meta=cfg.meta(rule.check, column=rule.column),
        )


def _value_set_expectation(E, rule: ValueSet, cfg: QualityConfig):
    # Only a rule with its own description passes one (GX then keeps its default).
    extra = {} if rule.description is None else {"description": rule.description}
    return E.ExpectColumnValuesToBeInSet(
        column=rule.column, value_set=rule.values, **extra, meta=cfg.meta(rule.check)
    )


def mart_suite(mart: str, cfg: QualityConfig, conn) -> Suite:
    """The suite of one staged mart: its contract's keys and required columns, plus the
    mart's own rules (MART_RULES). `conn` renders config values into SQL safely."""
    E = gx_module().expectations
    exps = _contract_expectations(E, mart, cfg)
    for rule in MART_RULES.get(mart, ()):
        if isinstance(rule, RowRule):
            exps.append(_row_expectation(E, rule, cfg, conn))
        else:
            exps.append(_value_set_expectation(E, rule, cfg))
    return Suite(f"staging.{mart}", exps)


def validate_staging(
    sqlalchemy_url: str, marts: list[str], conn, cfg: QualityConfig | None = None
) -> list[SuiteOutcome]:
    """Each mart's suite on its staging table."""
    cfg = cfg or QualityConfig.load()
    return run_sql_suites(sqlalchemy_url, [(mart_suite(m, cfg, conn), "staging", m) for m in marts])
