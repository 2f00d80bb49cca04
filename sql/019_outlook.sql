-- Issue 18, outlook: the projection marts, kept apart from the published actuals (every row
-- `is_projection`, the method in words on every row; config/outlook.yaml):
-- marts.quarterly_forecast (the next four quarters of inference spend, revenue share paid and
-- received, with a band) and marts.cap_projection (a capped agreement's cap used so far and the
-- quarter it is projected to be reached). Generated from their contracts in schemas/marts/ by
-- inference_ledger.db.ddl.table_sql.
SET LOCAL ROLE ledger_loader;

CREATE TABLE marts.quarterly_forecast (
    basis_period_label  text NOT NULL,
    basis_period_start  date NOT NULL,
    metric              text NOT NULL,
    period_label        text NOT NULL,
    period_start        date NOT NULL,
    horizon_quarters    bigint NOT NULL,
    basis_value_usd     numeric(38,10) NOT NULL,
    growth_ratio        numeric(38,10),
    growth_ratio_low    numeric(38,10),
    growth_ratio_high   numeric(38,10),
    projected_usd       numeric(38,10),
    projected_low_usd   numeric(38,10),
    projected_high_usd  numeric(38,10),
    method              text NOT NULL,
    is_projection       boolean NOT NULL,
    PRIMARY KEY (basis_period_start, metric, period_label)
);
COMMENT ON TABLE marts.quarterly_forecast IS 'Grain: one row per basis quarter, metric and forecast quarter.';
COMMENT ON COLUMN marts.quarterly_forecast.basis_period_label IS 'Last quarter of actuals the forecast is made from, YYYY-Qn';
COMMENT ON COLUMN marts.quarterly_forecast.basis_period_start IS 'First day of the basis quarter (date)';
COMMENT ON COLUMN marts.quarterly_forecast.metric IS 'What is forecast: inference_spend_usd, revshare_paid_usd or revshare_received_usd (the quarterly_summary columns of the same names, before prior-period adjustments)';
COMMENT ON COLUMN marts.quarterly_forecast.period_label IS 'Forecast quarter (a future quarter after the basis quarter), YYYY-Qn';
COMMENT ON COLUMN marts.quarterly_forecast.period_start IS 'First day of the forecast quarter (date)';
COMMENT ON COLUMN marts.quarterly_forecast.horizon_quarters IS 'Quarters between the basis quarter and the forecast quarter (1..forecast_quarters of config/outlook.yaml)';
COMMENT ON COLUMN marts.quarterly_forecast.basis_value_usd IS 'ACTUAL: the metric in the basis quarter, USD (exact decimal, 10 places)';
COMMENT ON COLUMN marts.quarterly_forecast.growth_ratio IS 'Mean of the quarter-over-quarter growth ratios of the trailing quarters through the basis quarter (a ratio, 10 places; 1.25 = +25 % a quarter); null when not measurable';
COMMENT ON COLUMN marts.quarterly_forecast.growth_ratio_low IS 'Lowest of those ratios (a ratio, 10 places; 1.25 = +25 % a quarter); null when not measurable';
COMMENT ON COLUMN marts.quarterly_forecast.growth_ratio_high IS 'Highest of those ratios (a ratio, 10 places; 1.25 = +25 % a quarter); null when not measurable';
COMMENT ON COLUMN marts.quarterly_forecast.projected_usd IS 'PROJECTION, not an actual: basis_value_usd x growth_ratio^horizon_quarters (compounded quarterly, 10 places each step); 0 after the direction''s terms end; USD';
COMMENT ON COLUMN marts.quarterly_forecast.projected_low_usd IS 'PROJECTION: the same at growth_ratio_low (lower edge of the band), USD';
COMMENT ON COLUMN marts.quarterly_forecast.projected_high_usd IS 'PROJECTION: the same at growth_ratio_high (upper edge of the band), USD';
COMMENT ON COLUMN marts.quarterly_forecast.method IS 'How the projection was made, in words, with the config version';
COMMENT ON COLUMN marts.quarterly_forecast.is_projection IS 'Always true: every row of this mart is a projection, never a published actual';

CREATE TABLE marts.cap_projection (
    agreement_id                      text NOT NULL,
    direction                         text NOT NULL,
    basis_period_label                text NOT NULL,
    basis_period_start                date NOT NULL,
    cap_usd                           numeric(38,10) NOT NULL,
    cap_used_usd                      numeric(38,10) NOT NULL,
    cap_remaining_usd                 numeric(38,10) NOT NULL,
    basis_expected_usd                numeric(38,10) NOT NULL,
    growth_ratio                      numeric(38,10),
    growth_ratio_low                  numeric(38,10),
    growth_ratio_high                 numeric(38,10),
    cap_reached_period_label          text,
    projected_cap_period_label        text,
    projected_cap_period_label_early  text,
    projected_cap_period_label_late   text,
    horizon_end_period_label          text,
    method                            text NOT NULL,
    is_projection                     boolean NOT NULL,
    PRIMARY KEY (agreement_id, direction, basis_period_start)
);
COMMENT ON TABLE marts.cap_projection IS 'Grain: one row per capped agreement, direction and basis quarter.';
COMMENT ON COLUMN marts.cap_projection.agreement_id IS 'Agreement with a cap (finance/contracts cap_amount)';
COMMENT ON COLUMN marts.cap_projection.direction IS 'payable or receivable';
COMMENT ON COLUMN marts.cap_projection.basis_period_label IS 'Last quarter of actuals the projection is made from, YYYY-Qn';
COMMENT ON COLUMN marts.cap_projection.basis_period_start IS 'First day of the basis quarter (date)';
COMMENT ON COLUMN marts.cap_projection.cap_usd IS 'ACTUAL: the agreement''s total cap (contract terms cap_amount), USD';
COMMENT ON COLUMN marts.cap_projection.cap_used_usd IS 'ACTUAL: cumulative expected share through the basis quarter, capped (revshare_reconciliation.cap_used_usd), USD';
COMMENT ON COLUMN marts.cap_projection.cap_remaining_usd IS 'ACTUAL: cap_usd - cap_used_usd, not below 0, USD';
COMMENT ON COLUMN marts.cap_projection.basis_expected_usd IS 'ACTUAL: the expected share of the basis quarter (revshare_reconciliation.expected_usd), USD';
COMMENT ON COLUMN marts.cap_projection.growth_ratio IS 'Mean of the quarter-over-quarter growth ratios of the expected share over the trailing quarters through the basis quarter (a ratio, 10 places; 1.25 = +25 % a quarter); null when not measurable';
COMMENT ON COLUMN marts.cap_projection.growth_ratio_low IS 'Lowest of those ratios (a ratio, 10 places; 1.25 = +25 % a quarter); null when not measurable';
COMMENT ON COLUMN marts.cap_projection.growth_ratio_high IS 'Highest of those ratios (a ratio, 10 places; 1.25 = +25 % a quarter); null when not measurable';
COMMENT ON COLUMN marts.cap_projection.cap_reached_period_label IS 'ACTUAL: the quarter the cumulative expected share reached the cap, YYYY-Qn; null while it has not';
COMMENT ON COLUMN marts.cap_projection.projected_cap_period_label IS 'PROJECTION: the quarter the cap is projected to be reached at growth_ratio, YYYY-Qn; null when already reached, not measurable or not within the horizon';
COMMENT ON COLUMN marts.cap_projection.projected_cap_period_label_early IS 'PROJECTION: the same at growth_ratio_high (earliest edge of the band)';
COMMENT ON COLUMN marts.cap_projection.projected_cap_period_label_late IS 'PROJECTION: the same at growth_ratio_low (latest edge of the band); null when not reached within the horizon';
COMMENT ON COLUMN marts.cap_projection.horizon_end_period_label IS 'Last quarter searched: cap_horizon_quarters of config/outlook.yaml, never past the agreement''s last term; null when none is left';
COMMENT ON COLUMN marts.cap_projection.method IS 'How the projection was made, in words, with the config version';
COMMENT ON COLUMN marts.cap_projection.is_projection IS 'Always true: the projected_* columns are projections; the columns marked ACTUAL restate published figures';

CREATE TABLE staging.quarterly_forecast (
    basis_period_label  text,
    basis_period_start  date,
    metric              text,
    period_label        text,
    period_start        date,
    horizon_quarters    bigint,
    basis_value_usd     numeric(38,10),
    growth_ratio        numeric(38,10),
    growth_ratio_low    numeric(38,10),
    growth_ratio_high   numeric(38,10),
    projected_usd       numeric(38,10),
    projected_low_usd   numeric(38,10),
    projected_high_usd  numeric(38,10),
    method              text,
    is_projection       boolean
);
COMMENT ON TABLE staging.quarterly_forecast IS 'Write/audit copy of marts.quarterly_forecast: no constraints, so a bad batch still loads and the data-quality audit reports it instead of a constraint rejecting it.';

CREATE TABLE staging.cap_projection (
    agreement_id                      text,
    direction                         text,
    basis_period_label                text,
    basis_period_start                date,
    cap_usd                           numeric(38,10),
    cap_used_usd                      numeric(38,10),
    cap_remaining_usd                 numeric(38,10),
    basis_expected_usd                numeric(38,10),
    growth_ratio                      numeric(38,10),
    growth_ratio_low                  numeric(38,10),
    growth_ratio_high                 numeric(38,10),
    cap_reached_period_label          text,
    projected_cap_period_label        text,
    projected_cap_period_label_early  text,
    projected_cap_period_label_late   text,
    horizon_end_period_label          text,
    method                            text,
    is_projection                     boolean
);
COMMENT ON TABLE staging.cap_projection IS 'Write/audit copy of marts.cap_projection: no constraints, so a bad batch still loads and the data-quality audit reports it instead of a constraint rejecting it.';
