-- A run's state between its steps lives in the database with the rest of the run, not as small
-- Parquet files under the run in the lake: the closed periods its aggregate worked with and
-- the billing months its ingest left out. Its publish step (maybe another process, e.g. the
-- nightly DAG's publish task) reads them without a Spark session. The run's range was already
-- here (audit.runs period_start / period_end).
SET LOCAL ROLE ledger_loader;

ALTER TABLE audit.runs ADD COLUMN closed_periods_used text[];
COMMENT ON COLUMN audit.runs.closed_periods_used IS 'Quarters (e.g. 2024-Q1) that were closed when the run aggregated, sorted; NULL until its aggregate recorded them. Publish refuses to go ahead when the closed periods differ by then.';

-- Grain: one row per run and billing month its ingest could not load.
CREATE TABLE audit.run_failed_months (
    run_id         text NOT NULL REFERENCES audit.runs (run_id),
    billing_month  text NOT NULL,
    reason         text NOT NULL,
    PRIMARY KEY (run_id, billing_month)
);
COMMENT ON TABLE audit.run_failed_months IS 'Grain: one row per run and billing month its ingest left out (e.g. no FX rate for the month): the month keeps its previous lake partition and the run fails naming it after publishing the other months.';
COMMENT ON COLUMN audit.run_failed_months.run_id IS 'The run (audit.runs) whose ingest left the month out.';
COMMENT ON COLUMN audit.run_failed_months.billing_month IS 'Billing month left out, YYYY-MM.';
COMMENT ON COLUMN audit.run_failed_months.reason IS 'Why, e.g. the first missing FX rates of the month (up to three).';
