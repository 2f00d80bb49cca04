-- Billing control totals (issue 3): per run, billing month and currency, what the loaded
-- input rows add up to and what the lake holds after the write. Ingest fails if they differ.
-- And the share of spend no workload rule claimed, per month, for analysts.
SET LOCAL ROLE ledger_loader;

CREATE TABLE audit.billing_control_totals (
    run_id            text NOT NULL REFERENCES audit.runs (run_id),
    billing_month     text NOT NULL,
    currency          text NOT NULL,
    rows_loaded       bigint NOT NULL,
    billed_cost_in    numeric(38,10) NOT NULL,
    billed_cost_lake  numeric(38,10) NOT NULL,
    billed_cost_usd   numeric(38,10) NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, billing_month, currency),
    CHECK (billed_cost_in = billed_cost_lake)
);
COMMENT ON TABLE audit.billing_control_totals IS
    'Grain: one row per run, billing month and billing currency. Input rows loaded = lake.';

-- Grain: one row per month and workload (inference / training / other).
CREATE VIEW marts.workload_share_monthly AS
WITH monthly AS (
    SELECT date_trunc('month', usage_date)::date AS usage_month,
           workload,
           sum(billed_cost_usd) AS billed_cost_usd
    FROM marts.inference_spend_daily
    GROUP BY 1, 2
)
SELECT usage_month,
       workload,
       billed_cost_usd,
       round(billed_cost_usd / nullif(sum(billed_cost_usd) OVER (PARTITION BY usage_month), 0), 10)
           AS share_of_month
FROM monthly;
COMMENT ON VIEW marts.workload_share_monthly IS
    'Grain: one row per month and workload; share_of_month of workload other = spend no rule classified.';
GRANT SELECT ON marts.workload_share_monthly TO ledger_analyst;
