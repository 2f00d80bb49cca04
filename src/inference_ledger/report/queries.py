"""The SQL behind every number a report shows. Financial figures come from `marts` only; the
data-quality and input sections read `audit`. Each report section prints its query, so a
reviewer can run it (psql, a BI tool) and get the same numbers.

Queries take one parameter at most, a validated period label or a run id; `render_sql` inlines
it for display (labels are checked by `periods.Quarter.parse` / `parse_year` first). The
margin and outlook queries are in `outlook_queries` (OUTLOOK, re-exported here)."""

from __future__ import annotations

from inference_ledger.report.outlook_queries import OUTLOOK as OUTLOOK  # re-exported
from inference_ledger.report.query import Query

SUMMARY_COLUMNS = (
    "period_label, fiscal_period_label, inference_spend_usd, revshare_paid_usd, "
    "implied_revenue_usd, revshare_received_usd, net_revshare_usd, spend_to_implied_revenue_ratio, "
    "revshare_paid_adjustment_usd, revshare_received_adjustment_usd"
)

SUMMARY_ALL = Query(
    "summary_all",
    f"""SELECT {SUMMARY_COLUMNS}
FROM marts.quarterly_summary
ORDER BY period_label""",
)

SUMMARY_PERIOD = Query(
    "summary_period",
    f"""SELECT {SUMMARY_COLUMNS}
FROM marts.quarterly_summary
WHERE period_label = %(p)s""",
)

SUMMARY_YEAR = Query(
    "summary_year",
    f"""SELECT {SUMMARY_COLUMNS}
FROM marts.quarterly_summary
WHERE period_label LIKE %(p)s || '-Q%%'
ORDER BY period_label""",
)

YEAR_TOTALS = Query(
    "year_totals",
    """SELECT left(period_label, 4) AS year,
       count(*) AS quarters,
       sum(inference_spend_usd) AS inference_spend_usd,
       sum(revshare_paid_usd) AS revshare_paid_usd,
       sum(implied_revenue_usd) AS implied_revenue_usd,
       sum(revshare_received_usd) AS revshare_received_usd,
       sum(net_revshare_usd) AS net_revshare_usd
FROM marts.quarterly_summary
WHERE period_label LIKE %(p)s || '-Q%%'
GROUP BY 1""",
)

HALF_YEAR_TOTALS = Query(
    "half_year_totals",
    """SELECT left(period_label, 4) || '-H' || CASE WHEN right(period_label, 1) IN ('1', '2')
                                              THEN '1' ELSE '2' END AS half_year,
       count(*) AS quarters,
       sum(inference_spend_usd) AS inference_spend_usd,
       sum(revshare_paid_usd) AS revshare_paid_usd,
       sum(implied_revenue_usd) AS implied_revenue_usd,
       sum(revshare_received_usd) AS revshare_received_usd,
       sum(net_revshare_usd) AS net_revshare_usd
FROM marts.quarterly_summary
WHERE period_label LIKE %(p)s || '-Q%%'
GROUP BY 1
ORDER BY 1""",
)

RECONCILIATION = Query(
    "reconciliation",
    """SELECT period_label, agreement_id, direction, counterparty, is_adjustment, basis_definition,
       basis_usd, basis_entry_count, rate, expected_usd, settled_usd, variance_usd, variance_ratio,
       tolerance_usd, status, payment_due_date, implied_basis_usd, cap_used_usd,
       cap_remaining_usd, statement_ids, superseded_statement_ids, statement_basis_usd,
       usage_estimate_usd, usage_estimate_variance_usd, usage_estimate_variance_ratio,
       usage_unpriced_tokens, adjustment_of_period, adjustment_reason, adjustment_inputs
FROM marts.revshare_reconciliation
WHERE period_label = %(p)s
ORDER BY is_adjustment, direction, agreement_id""",
)

# The arithmetic of the variance explanations, done by Postgres on the mart's columns.
EXPLANATION = Query(
    "explanation",
    """SELECT agreement_id, direction, is_adjustment,
       basis_usd * rate AS uncapped_expected_usd,
       basis_usd * rate - expected_usd AS cap_effect_usd,
       statement_basis_usd - basis_usd AS statement_basis_difference_usd,
       (statement_basis_usd - basis_usd) * rate AS basis_difference_effect_usd,
       settled_usd - statement_basis_usd * rate AS statement_arithmetic_difference_usd,
       usage_estimate_usd * rate AS share_at_usage_estimate_usd
FROM marts.revshare_reconciliation
WHERE period_label = %(p)s
ORDER BY is_adjustment, direction, agreement_id""",
)

ADJUSTMENTS_OF = Query(
    "adjustments_of",
    """SELECT period_label AS posted_in, agreement_id, direction, basis_usd, expected_usd,
       settled_usd, variance_usd, status, adjustment_of_period, adjustment_reason,
       adjustment_inputs
FROM marts.revshare_reconciliation
WHERE is_adjustment AND %(p)s = ANY (string_to_array(adjustment_of_period, ','))
ORDER BY period_label, direction, agreement_id""",
)

VARIANCE_BY_PERIOD = Query(
    "variance_by_period",
    """SELECT period_label, direction,
       sum(variance_usd) AS variance_usd,
       count(*) FILTER (WHERE status NOT IN ('matched', 'pending')) AS exceptions
FROM marts.revshare_reconciliation
GROUP BY period_label, direction
ORDER BY period_label, direction""",
)

STATUS_BY_PERIOD = Query(
    "status_by_period",
    """SELECT period_label, agreement_id, direction, is_adjustment, status
FROM marts.revshare_reconciliation
ORDER BY period_label, is_adjustment, direction, agreement_id""",
)

# Each month of the quarter: its spend and whether the bill behind it is final. A month is
# final when every spend row of it is (the mart marks a row final when every line of its
# billing month is); a month with no spend row says so.
SPEND_MONTHS = Query(
    "spend_months",
    """WITH months AS (
    SELECT generate_series(q, q + interval '2 months', interval '1 month')::date AS month
    FROM (SELECT make_date(left(%(p)s, 4)::int, right(%(p)s, 1)::int * 3 - 2, 1) AS q) s
)
SELECT to_char(m.month, 'YYYY-MM') AS month,
       coalesce(sum(d.billed_cost_usd) FILTER (WHERE d.workload = 'inference'), 0)
           AS inference_spend_usd,
       coalesce(sum(d.billed_cost_usd), 0) AS billed_cost_usd,
       count(d.usage_date) AS spend_rows,
       CASE WHEN count(d.usage_date) = 0 THEN 'no spend published'
            WHEN bool_and(d.month_status = 'final') THEN 'final'
            ELSE 'provisional' END AS month_status
FROM months m
LEFT JOIN marts.inference_spend_daily d ON date_trunc('month', d.usage_date)::date = m.month
GROUP BY m.month
ORDER BY m.month""",
)

# spend.csv: the quarter's spend by month and every dimension of the daily mart.
SPEND_BY_MONTH = Query(
    "spend_by_month",
    """SELECT to_char(usage_date, 'YYYY-MM') AS month, provider, service_name, region, sku,
       model_id, token_direction, workload, month_status,
       sum(billed_cost_usd) AS billed_cost_usd, sum(effective_cost_usd) AS effective_cost_usd,
       sum(consumed_quantity) AS consumed_quantity, consumed_unit
FROM marts.inference_spend_daily
WHERE to_char(usage_date, 'YYYY') || '-Q' || to_char(usage_date, 'Q') = %(p)s
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, consumed_unit
ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, consumed_unit""",
)

# ---------------------------------------------------------------- drill-down of a quarter

# Spend by one dimension of the daily mart: the five largest values, then the rest in one
# "(all others)" row, each with its share of the quarter's billed spend.
BREAKDOWN_DIMENSIONS = ("service_name", "region", "model_id", "workload")
BREAKDOWN_TOP = 5


def _breakdown(dimension: str) -> Query:
    assert dimension in BREAKDOWN_DIMENSIONS  # an identifier from the fixed list, not input
    return Query(
        f"spend_by_{dimension}",
        f"""WITH spend AS (
    SELECT {dimension} AS value,
           sum(billed_cost_usd) AS billed_cost_usd,
           sum(billed_cost_usd) FILTER (WHERE workload = 'inference') AS inference_spend_usd
    FROM marts.inference_spend_daily
    WHERE to_char(usage_date, 'YYYY') || '-Q' || to_char(usage_date, 'Q') = %(p)s
    GROUP BY {dimension}
), ranked AS (
    SELECT value, billed_cost_usd, inference_spend_usd,
           row_number() OVER (ORDER BY billed_cost_usd DESC, value) AS rank
    FROM spend
), grouped AS (
    SELECT CASE WHEN rank <= {BREAKDOWN_TOP} THEN value ELSE '(all others)' END AS value,
           least(rank, {BREAKDOWN_TOP + 1}) AS rank,
           count(*) AS value_count,
           sum(billed_cost_usd) AS billed_cost_usd,
           coalesce(sum(inference_spend_usd), 0) AS inference_spend_usd
    FROM ranked
    GROUP BY 1, 2
)
SELECT value, value_count, billed_cost_usd, inference_spend_usd,
       round(billed_cost_usd / nullif(sum(billed_cost_usd) OVER (), 0), 10) AS share_of_billed
FROM grouped
ORDER BY rank""",
    )


SPEND_BREAKDOWNS = {d: _breakdown(d) for d in BREAKDOWN_DIMENSIONS}

# Unit cost of the quarter per channel and model: spend allocated to the model over its
# tokens (marts.unit_cost_monthly summed over the quarter's months).
UNIT_COST = Query(
    "unit_cost",
    """SELECT channel, model,
       sum(total_tokens) AS total_tokens,
       sum(num_model_requests) AS num_model_requests,
       sum(allocated_spend_usd) AS allocated_spend_usd,
       round(sum(allocated_spend_usd) * 1000000 / nullif(sum(total_tokens), 0), 10)
           AS cost_per_1m_tokens_usd
FROM marts.unit_cost_monthly
WHERE to_char(usage_month, 'YYYY') || '-Q' || to_char(usage_month, 'Q') = %(p)s
GROUP BY channel, model
ORDER BY allocated_spend_usd DESC NULLS LAST, channel, model""",
)


# ---------------------------------------------------------------- the audit behind a period
# Per period, not per run (marts.period_status, period_data_quality, period_quarantine): the
# inputs the published figures rest on, whichever run read them, so a rerun that reads
# nothing new leaves this part of the page as it was.

PERIOD_STATUS = Query(
    "period_status",
    """SELECT s.period_label, s.is_closed, s.published_by_run_id, s.published_at, s.as_of,
       s.months_final, s.months_provisional, s.is_final, s.dq_checks, s.dq_warnings,
       s.dq_critical_failed, s.quarantined_rows, s.quarantined_amount_by_currency,
       r.command, r.status AS run_status
FROM marts.period_status s
LEFT JOIN audit.runs r ON r.run_id = s.published_by_run_id
WHERE s.period_label = %(p)s""",
)

PERIOD_STATUS_ALL = Query(
    "period_status_all",
    """SELECT period_label, is_closed, published_by_run_id, published_at, as_of, months_final,
       months_provisional, dq_warnings, dq_critical_failed, quarantined_rows
FROM marts.period_status
ORDER BY period_label""",
)

DQ_RESULTS = Query(
    "dq_results",
    """SELECT suite, expectation, column_name, severity, success, observed_value, run_id
FROM marts.period_data_quality
WHERE period_label = %(p)s
ORDER BY success, severity, suite, expectation, column_name, run_id""",
)

DQ_SUITES = Query(
    "dq_suites",
    """SELECT suite, count(*) AS checks,
       count(*) FILTER (WHERE success) AS passed,
       count(*) FILTER (WHERE NOT success AND severity = 'critical') AS failed_critical,
       count(*) FILTER (WHERE NOT success AND severity = 'warning') AS failed_warning,
       count(DISTINCT run_id) AS runs
FROM marts.period_data_quality
WHERE period_label = %(p)s
GROUP BY suite
ORDER BY suite""",
)

# Whole files: a file's counts cover all its rows, also those of other periods.
INPUT_FILES = Query(
    "input_files",
    """SELECT f.source, count(*) AS files, sum(f.rows_read) AS rows_read,
       sum(f.rows_loaded) AS rows_loaded, sum(f.rows_quarantined) AS rows_quarantined,
       sum(f.rows_superseded) AS rows_superseded, sum(f.rows_deduplicated) AS rows_deduplicated,
       count(DISTINCT f.run_id) AS runs
FROM audit.period_inputs pi
JOIN audit.input_files f ON f.run_id = pi.read_by_run_id AND f.path = pi.path
WHERE pi.period_label = %(p)s
GROUP BY f.source
ORDER BY f.source""",
)

QUARANTINE = Query(
    "quarantine",
    """SELECT source, field, reason, currency, sum(row_count) AS rows, sum(amount) AS amount,
       count(DISTINCT path) AS files
FROM marts.period_quarantine
WHERE period_label = %(p)s
GROUP BY source, field, reason, currency
ORDER BY rows DESC, source, field, reason, currency""",
)

# quarantine.csv: per file, reason and currency, with the run whose reading quarantined them.
QUARANTINE_FILES = Query(
    "quarantine_files",
    """SELECT source, path, field, reason, currency, row_count AS rows, amount, run_id
FROM marts.period_quarantine
WHERE period_label = %(p)s
ORDER BY source, path, field, reason, currency""",
)
