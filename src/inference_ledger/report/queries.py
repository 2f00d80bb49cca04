"""The SQL behind every number a report shows. Financial figures come from `marts` only; the
data-quality and input sections read `audit`. Each report section prints its query, so a
reviewer can run it (psql, a BI tool) and get the same numbers.

Queries take one parameter at most, a validated period label or a run id; `render_sql` inlines
it for display (labels are checked by `periods.Quarter.parse` / `parse_year` first)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Query:
    name: str
    sql: str  # psycopg2 paramstyle: at most one %(p)s

    def run(self, conn, param=None) -> list[dict]:
        with conn.cursor() as cur:
            cur.execute(self.sql, {"p": param})
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def shown(self, param=None) -> str:
        """The query as a reviewer would type it."""
        text = self.sql.replace("%%", "%")
        if param is None:
            return text
        return text.replace("%(p)s", "'" + str(param).replace("'", "''") + "'")


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

# ---------------------------------------------------------------- audit (not marts)

PUBLISHING_RUN = Query(
    "publishing_run",
    """SELECT p.run_id, p.published_at, r.command, r.status, r.started_at, r.finished_at,
       r.period_start, r.period_end
FROM audit.published_periods p JOIN audit.runs r USING (run_id)
WHERE p.table_name = 'quarterly_summary' AND p.period_value = %(p)s""",
)

DQ_RESULTS = Query(
    "dq_results",
    """SELECT suite, expectation, column_name, severity, success, observed_value
FROM audit.dq_results
WHERE run_id = %(p)s
ORDER BY success, severity, suite, expectation, column_name""",
)

DQ_SUITES = Query(
    "dq_suites",
    """SELECT suite, count(*) AS checks,
       count(*) FILTER (WHERE success) AS passed,
       count(*) FILTER (WHERE NOT success AND severity = 'critical') AS failed_critical,
       count(*) FILTER (WHERE NOT success AND severity = 'warning') AS failed_warning
FROM audit.dq_results
WHERE run_id = %(p)s
GROUP BY suite
ORDER BY suite""",
)

INPUT_FILES = Query(
    "input_files",
    """SELECT source, count(*) AS files, sum(rows_read) AS rows_read,
       sum(rows_loaded) AS rows_loaded, sum(rows_quarantined) AS rows_quarantined,
       sum(rows_superseded) AS rows_superseded, sum(rows_deduplicated) AS rows_deduplicated
FROM audit.input_files
WHERE run_id = %(p)s
GROUP BY source
ORDER BY source""",
)

QUARANTINE = Query(
    "quarantine",
    """SELECT source, coalesce(field, '') AS field, reason, count(*) AS rows
FROM audit.quarantine
WHERE run_id = %(p)s
GROUP BY 1, 2, 3
ORDER BY rows DESC, source, field, reason""",
)
