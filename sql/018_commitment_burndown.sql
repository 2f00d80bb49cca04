-- Issue 18, commitments: marts.commitment_burndown (one row per cloud consumption commitment
-- and month of its term: eligible spend, cumulative consumed, remaining, share of term vs share
-- consumed, and the end-of-term projection at the trailing run-rate, labelled as one;
-- config/commitments.yaml) and its staging twin. The commitments themselves are the finance
-- feed finance/commitments/*.csv (lake table `commitments`). Generated from
-- schemas/marts/commitment_burndown.schema.json by inference_ledger.db.ddl.table_sql.
SET LOCAL ROLE ledger_loader;

CREATE TABLE marts.commitment_burndown (
    commitment_id            text NOT NULL,
    month_start              date NOT NULL,
    counterparty             text NOT NULL,
    term_start               date NOT NULL,
    term_end                 date NOT NULL,
    commitment_usd           numeric(38,10) NOT NULL,
    eligible_spend_usd       numeric(38,10) NOT NULL,
    cumulative_consumed_usd  numeric(38,10) NOT NULL,
    remaining_usd            numeric(38,10) NOT NULL,
    term_elapsed_ratio       numeric(38,10) NOT NULL,
    consumed_ratio           numeric(38,10),
    daily_run_rate_usd       numeric(38,10),
    days_left_in_term        bigint NOT NULL,
    projected_consumed_usd   numeric(38,10),
    projected_variance_usd   numeric(38,10),
    projection_status        text NOT NULL,
    projection_method        text NOT NULL,
    PRIMARY KEY (commitment_id, month_start)
);
COMMENT ON TABLE marts.commitment_burndown IS 'Grain: one row per commitment and calendar month of its term.';
COMMENT ON COLUMN marts.commitment_burndown.commitment_id IS 'Commitment (finance/commitments commitment_id)';
COMMENT ON COLUMN marts.commitment_burndown.month_start IS 'Calendar month of the term: its first day (date)';
COMMENT ON COLUMN marts.commitment_burndown.counterparty IS 'Who the commitment is with (finance/commitments counterparty)';
COMMENT ON COLUMN marts.commitment_burndown.term_start IS 'First day of the term (inclusive)';
COMMENT ON COLUMN marts.commitment_burndown.term_end IS 'End of the term (exclusive)';
COMMENT ON COLUMN marts.commitment_burndown.commitment_usd IS 'Committed amount in USD (converted at the FX rate of term_start), USD (exact decimal, 10 places)';
COMMENT ON COLUMN marts.commitment_burndown.eligible_spend_usd IS 'Billed cost of the month''s billing lines inside the term that an eligible service or meter names (config/commitments.yaml), USD (exact decimal, 10 places)';
COMMENT ON COLUMN marts.commitment_burndown.cumulative_consumed_usd IS 'Eligible spend from term_start through this month, USD (exact decimal, 10 places)';
COMMENT ON COLUMN marts.commitment_burndown.remaining_usd IS 'commitment_usd - cumulative_consumed_usd: commitment left to consume; negative once consumption exceeds it, USD (exact decimal, 10 places)';
COMMENT ON COLUMN marts.commitment_burndown.term_elapsed_ratio IS 'Share of the term''s days elapsed by the end of this month (or of the term): a ratio 0..1, 10 places';
COMMENT ON COLUMN marts.commitment_burndown.consumed_ratio IS 'cumulative_consumed_usd / commitment_usd: share of the commitment consumed, a ratio (above 1 when exceeded), 10 places';
COMMENT ON COLUMN marts.commitment_burndown.daily_run_rate_usd IS 'PROJECTION INPUT: eligible spend of the trailing months of the term through this month (config/commitments.yaml trailing_months) / their days in the term, USD per day (10 places)';
COMMENT ON COLUMN marts.commitment_burndown.days_left_in_term IS 'Days of the term after this month (count); 0 in its last month';
COMMENT ON COLUMN marts.commitment_burndown.projected_consumed_usd IS 'PROJECTION, not an actual: cumulative_consumed_usd + daily_run_rate_usd x days_left_in_term, the consumption expected at the end of the term at the trailing run-rate, USD (exact decimal, 10 places)';
COMMENT ON COLUMN marts.commitment_burndown.projected_variance_usd IS 'PROJECTION, not an actual: projected_consumed_usd - commitment_usd; negative = projected shortfall (commitment left unused at term end), positive = surplus, USD (exact decimal, 10 places)';
COMMENT ON COLUMN marts.commitment_burndown.projection_status IS 'shortfall, surplus or met: the sign of projected_variance_usd (a projection)';
COMMENT ON COLUMN marts.commitment_burndown.projection_method IS 'How the projection was made, in words, with the config version';

CREATE TABLE staging.commitment_burndown (
    commitment_id            text,
    month_start              date,
    counterparty             text,
    term_start               date,
    term_end                 date,
    commitment_usd           numeric(38,10),
    eligible_spend_usd       numeric(38,10),
    cumulative_consumed_usd  numeric(38,10),
    remaining_usd            numeric(38,10),
    term_elapsed_ratio       numeric(38,10),
    consumed_ratio           numeric(38,10),
    daily_run_rate_usd       numeric(38,10),
    days_left_in_term        bigint,
    projected_consumed_usd   numeric(38,10),
    projected_variance_usd   numeric(38,10),
    projection_status        text,
    projection_method        text
);
COMMENT ON TABLE staging.commitment_burndown IS 'Write/audit copy of marts.commitment_burndown: no constraints, so a bad batch still loads and the data-quality audit reports it instead of a constraint rejecting it.';
