"""The margin and outlook queries of quarter and year pages (OUTLOOK[kind][section], kind
"quarter" or "year"); `queries` re-exports OUTLOOK."""

from __future__ import annotations

from inference_ledger.report.query import Query

# Quarter pages pass a quarter label, year pages a year; `_in(col)` is the period test of a
# date column either way. Projections come from their own marts (is_projection) and are
# shown apart from the actuals; their basis is the period's last quarter with one.


def _in(col: str, kind: str) -> str:
    if kind == "year":
        return f"to_char({col}, 'YYYY') = %(p)s"
    return f"to_char({col}, 'YYYY') || '-Q' || to_char({col}, 'Q') = %(p)s"


def _margin(kind: str) -> Query:
    return Query(
        f"unit_margin_{kind}",
        f"""SELECT channel, model,
       sum(total_tokens) AS total_tokens,
       sum(revenue_usd) AS revenue_usd,
       sum(inference_cost_usd) AS inference_cost_usd,
       sum(revshare_paid_usd) AS revshare_paid_usd,
       sum(margin_usd) AS margin_usd,
       round(sum(margin_usd) * 1000000 / nullif(sum(total_tokens), 0), 10)
           AS margin_per_1m_tokens_usd
FROM marts.unit_margin_monthly
WHERE {_in("usage_month", kind)}
GROUP BY channel, model
ORDER BY channel, revenue_usd DESC, model""",
    )


def _burndown(kind: str) -> Query:
    return Query(
        f"commitment_burndown_{kind}",
        f"""SELECT commitment_id, counterparty, month_start, term_start, term_end, commitment_usd,
       eligible_spend_usd, cumulative_consumed_usd, remaining_usd, term_elapsed_ratio,
       consumed_ratio, daily_run_rate_usd, days_left_in_term, projected_consumed_usd,
       projected_variance_usd, projection_status, projection_method, consumption_basis
FROM marts.commitment_burndown
WHERE commitment_id IN (SELECT commitment_id FROM marts.commitment_burndown
                        WHERE {_in("month_start", kind)})
  AND month_start < (SELECT max(month_start) FROM marts.commitment_burndown
                     WHERE {_in("month_start", kind)}) + interval '1 day'
ORDER BY commitment_id, month_start""",
    )


def _latest_basis(table: str, kind: str) -> str:
    return (
        f"basis_period_start = (SELECT max(basis_period_start) FROM marts.{table}"
        f" WHERE {_in('basis_period_start', kind)})"
    )


def _caps(kind: str) -> Query:
    return Query(
        f"cap_projection_{kind}",
        f"""SELECT agreement_id, direction, basis_period_label, cap_usd, cap_used_usd,
       cap_remaining_usd, basis_expected_usd, growth_ratio, growth_ratio_low, growth_ratio_high,
       cap_reached_period_label, projected_cap_period_label, projected_cap_period_label_early,
       projected_cap_period_label_late, horizon_end_period_label, method, is_projection
FROM marts.cap_projection
WHERE {_latest_basis("cap_projection", kind)}
ORDER BY agreement_id, direction""",
    )


def _forecast(kind: str) -> Query:
    return Query(
        f"forecast_{kind}",
        f"""SELECT basis_period_label, metric, period_label, horizon_quarters, basis_value_usd,
       growth_ratio, growth_ratio_low, growth_ratio_high, projected_low_usd, projected_usd,
       projected_high_usd, method, is_projection
FROM marts.quarterly_forecast
WHERE {_latest_basis("quarterly_forecast", kind)}
ORDER BY metric, period_label""",
    )


OUTLOOK = {
    kind: {
        "unit_margin": _margin(kind),
        "burndown": _burndown(kind),
        "caps": _caps(kind),
        "forecast": _forecast(kind),
    }
    for kind in ("quarter", "year")
}
