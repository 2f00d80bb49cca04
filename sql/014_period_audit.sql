-- Audit per period, not per run (issue 15 points 1-2). A period's report used to describe the
-- last run that published it: a rerun that read nothing new showed zero inputs and no
-- quarantine. Now each open period records, when it is published, the input files its figures
-- rest on and the run that last read each one; its quarantine and data quality follow from
-- those readings, whichever run made them.
SET LOCAL ROLE ledger_loader;

ALTER TABLE audit.runs ADD COLUMN as_of date;
COMMENT ON COLUMN audit.runs.as_of IS
    'Date the run judged settlement statuses at (pending vs missing_settlement, freshness): --as-of, default the day the run started (UTC).';

-- The month each quarantined row belongs to and the money at stake in it.
ALTER TABLE audit.quarantine
    ADD COLUMN period_month text CHECK (period_month ~ '^[0-9]{4}-[0-9]{2}$'),
    ADD COLUMN amount numeric(38,10),
    ADD COLUMN currency text;
COMMENT ON COLUMN audit.quarantine.period_month IS
    'YYYY-MM the row belongs to: the billing month of its export run, the usage date, revenue date or settlement period start; null where the file is not month-specific or the date is unreadable.';
COMMENT ON COLUMN audit.quarantine.amount IS
    'Money at stake in the row, in currency (billed cost of a billing line, amount of a revenue line or settlement); null where none or unreadable.';
COMMENT ON COLUMN audit.quarantine.currency IS 'ISO 4217 currency of amount, as delivered.';

ALTER TABLE audit.input_files
    ADD COLUMN months_loaded text[],
    ADD COLUMN months_quarantined text[],
    ADD COLUMN is_every_period boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN audit.input_files.months_loaded IS
    'YYYY-MM months the file''s loaded rows belong to; null for rows recorded before migration 014 or files that are not month-specific.';
COMMENT ON COLUMN audit.input_files.months_quarantined IS
    'YYYY-MM months of the file''s quarantined rows (a row with an unreadable date counts in no month).';
COMMENT ON COLUMN audit.input_files.is_every_period IS
    'true for inputs every period rests on (FX rates, prices, contract terms): not tied to a month.';

-- Grain: one row per open period (calendar quarter) and input file, rewritten in the publish
-- transaction that republishes the period; a closed period keeps the rows of its last publish.
CREATE TABLE audit.period_inputs (
    period_label         text NOT NULL CHECK (period_label ~ '^[0-9]{4}-Q[1-4]$'),
    path                 text NOT NULL,
    source               text NOT NULL,
    read_by_run_id       text NOT NULL REFERENCES audit.runs (run_id),
    published_by_run_id  text NOT NULL REFERENCES audit.runs (run_id),
    recorded_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period_label, path)
);
CREATE INDEX period_inputs_read_by_idx ON audit.period_inputs (read_by_run_id, path);
COMMENT ON TABLE audit.period_inputs IS
    'Grain: one row per published period and input file its figures rest on (rows loaded in the period, rows of the period all quarantined, or an every-period input), with the run whose reading of the file counts.';
COMMENT ON COLUMN audit.period_inputs.period_label IS 'Calendar quarter, e.g. 2024-Q2.';
COMMENT ON COLUMN audit.period_inputs.path IS 'Landing path of the input file.';
COMMENT ON COLUMN audit.period_inputs.source IS 'Input source (billing.azure, usage, finance.revenue, ...).';
COMMENT ON COLUMN audit.period_inputs.read_by_run_id IS 'Run whose reading of the file (counts, quarantine, checks) the period rests on: the newest run that read it rather than skipping it as unchanged.';
COMMENT ON COLUMN audit.period_inputs.published_by_run_id IS 'Run that last published the period.';
COMMENT ON COLUMN audit.period_inputs.recorded_at IS 'When the publish transaction wrote the row.';

-- Grain: one row per period and data-quality result the period rests on: the input-file
-- checks of the runs that read its inputs, the lake and mart checks of the publishing run.
CREATE VIEW marts.period_data_quality AS
WITH period_runs AS (
    SELECT DISTINCT period_label, read_by_run_id AS run_id, 'read' AS role
    FROM audit.period_inputs
    UNION
    SELECT period_value, run_id, 'published'
    FROM audit.published_periods
    WHERE table_name = 'quarterly_summary'
)
SELECT pr.period_label,
       d.run_id,
       d.suite,
       d.expectation,
       d.column_name,
       d.check_name,
       d.severity,
       d.success,
       d.observed_value,
       d.checked_at
FROM period_runs pr
JOIN audit.dq_results d ON d.run_id = pr.run_id
WHERE (pr.role = 'read' AND d.suite = 'ingest.input_files')
   OR (pr.role = 'published' AND d.suite <> 'ingest.input_files');
COMMENT ON VIEW marts.period_data_quality IS
    'Grain: one row per period and data-quality result its published figures rest on; a rerun that reads nothing new re-checks the lake and marts but keeps the input-file checks of the runs that read the files.';
COMMENT ON COLUMN marts.period_data_quality.period_label IS 'Calendar quarter, e.g. 2024-Q2.';
COMMENT ON COLUMN marts.period_data_quality.run_id IS 'Run that recorded the result.';
COMMENT ON COLUMN marts.period_data_quality.suite IS 'Great Expectations suite: ingest.input_files, lake.<table>, lake.freshness, staging.<mart>.';
COMMENT ON COLUMN marts.period_data_quality.expectation IS 'Expectation type.';
COMMENT ON COLUMN marts.period_data_quality.column_name IS 'Column checked, if any.';
COMMENT ON COLUMN marts.period_data_quality.check_name IS 'Check in config/quality.yaml that set severity and threshold.';
COMMENT ON COLUMN marts.period_data_quality.severity IS 'critical (blocks publishing) or warning.';
COMMENT ON COLUMN marts.period_data_quality.success IS 'true when the expectation held.';
COMMENT ON COLUMN marts.period_data_quality.observed_value IS 'What the check observed, as text.';
COMMENT ON COLUMN marts.period_data_quality.checked_at IS 'When the check ran.';

-- Grain: one row per period, input file, field, reason and currency of quarantined rows.
CREATE VIEW marts.period_quarantine AS
SELECT pi.period_label,
       q.source,
       q.path,
       coalesce(q.field, '') AS field,
       q.reason,
       coalesce(q.currency, '') AS currency,
       count(*) AS row_count,
       sum(q.amount) AS amount,
       pi.read_by_run_id AS run_id
FROM audit.period_inputs pi
JOIN audit.quarantine q ON q.run_id = pi.read_by_run_id AND q.path = pi.path
WHERE q.period_month IS NULL
   OR left(q.period_month, 4) || '-Q' || ((substr(q.period_month, 6, 2)::int + 2) / 3)
      = pi.period_label
GROUP BY pi.period_label, q.source, q.path, coalesce(q.field, ''), q.reason,
         coalesce(q.currency, ''), pi.read_by_run_id;
COMMENT ON VIEW marts.period_quarantine IS
    'Grain: one row per period, input file, field, reason and currency: rows quarantined from the inputs the period rests on (rows of its months; rows with no readable month in every period of their file) and the money at stake.';
COMMENT ON COLUMN marts.period_quarantine.period_label IS 'Calendar quarter, e.g. 2024-Q2.';
COMMENT ON COLUMN marts.period_quarantine.source IS 'Input source of the file.';
COMMENT ON COLUMN marts.period_quarantine.path IS 'Landing path of the input file.';
COMMENT ON COLUMN marts.period_quarantine.field IS 'Field that failed its check; empty for whole-row reasons (conflicts, a month without FX).';
COMMENT ON COLUMN marts.period_quarantine.reason IS 'Why the rows were not loaded.';
COMMENT ON COLUMN marts.period_quarantine.currency IS 'Currency of amount as delivered; empty where the rows carry no money or it is unreadable.';
COMMENT ON COLUMN marts.period_quarantine.row_count IS 'Rows quarantined (count).';
COMMENT ON COLUMN marts.period_quarantine.amount IS 'Sum of the rows'' readable amounts, in currency (exact decimal); null where none is readable.';
COMMENT ON COLUMN marts.period_quarantine.run_id IS 'Run whose reading quarantined them.';

-- Grain: one row per period with published figures (calendar quarter).
CREATE VIEW marts.period_status AS
WITH published AS (
    SELECT p.period_value AS period_label, p.run_id, p.published_at, r.as_of
    FROM audit.published_periods p
    JOIN audit.runs r USING (run_id)
    WHERE p.table_name = 'quarterly_summary'
), months AS (
    SELECT to_char(usage_date, 'YYYY') || '-Q' || to_char(usage_date, 'Q') AS period_label,
           count(DISTINCT date_trunc('month', usage_date)) FILTER (WHERE month_status = 'final')
               AS months_final,
           count(DISTINCT date_trunc('month', usage_date))
               FILTER (WHERE month_status <> 'final') AS months_provisional
    FROM marts.inference_spend_daily
    GROUP BY 1
), dq AS (
    SELECT period_label,
           count(*) AS dq_checks,
           count(*) FILTER (WHERE NOT success AND severity = 'warning') AS dq_warnings,
           count(*) FILTER (WHERE NOT success AND severity = 'critical') AS dq_critical_failed
    FROM marts.period_data_quality
    GROUP BY period_label
), quarantine_by_currency AS (
    SELECT period_label, currency, sum(row_count) AS row_count, sum(amount) AS amount
    FROM marts.period_quarantine
    GROUP BY period_label, currency
), quarantine AS (
    SELECT period_label,
           sum(row_count) AS quarantined_rows,
           jsonb_object_agg(currency, amount) FILTER (WHERE currency <> '' AND amount IS NOT NULL)
               AS quarantined_amount_by_currency
    FROM quarantine_by_currency
    GROUP BY period_label
), closed AS (
    SELECT period_label, closed_at, closed_by
    FROM audit.closed_periods
    WHERE reopened_at IS NULL
)
SELECT pb.period_label,
       c.period_label IS NOT NULL AS is_closed,
       c.closed_at,
       c.closed_by,
       pb.run_id AS published_by_run_id,
       pb.published_at,
       pb.as_of,
       coalesce(m.months_final, 0) AS months_final,
       coalesce(m.months_provisional, 0) AS months_provisional,
       coalesce(m.months_final, 0) = 3 AS is_final,
       coalesce(d.dq_checks, 0) AS dq_checks,
       coalesce(d.dq_warnings, 0) AS dq_warnings,
       coalesce(d.dq_critical_failed, 0) AS dq_critical_failed,
       coalesce(q.quarantined_rows, 0)::bigint AS quarantined_rows,
       coalesce(q.quarantined_amount_by_currency, '{}'::jsonb) AS quarantined_amount_by_currency
FROM published pb
LEFT JOIN closed c USING (period_label)
LEFT JOIN months m USING (period_label)
LEFT JOIN dq d USING (period_label)
LEFT JOIN quarantine q USING (period_label);
COMMENT ON VIEW marts.period_status IS
    'Grain: one row per published period: open or closed, which run published it, when, as of which date, how many of its months are final, its data-quality warnings and its quarantine.';
COMMENT ON COLUMN marts.period_status.period_label IS 'Calendar quarter, e.g. 2024-Q2.';
COMMENT ON COLUMN marts.period_status.is_closed IS 'true while the period is closed (its figures no longer move; late changes post as adjustments).';
COMMENT ON COLUMN marts.period_status.closed_at IS 'When it was closed; null while open.';
COMMENT ON COLUMN marts.period_status.closed_by IS 'Who closed it; null while open.';
COMMENT ON COLUMN marts.period_status.published_by_run_id IS 'Run that last published the period''s figures.';
COMMENT ON COLUMN marts.period_status.published_at IS 'When that run published them.';
COMMENT ON COLUMN marts.period_status.as_of IS 'Date settlement statuses were judged at by that run.';
COMMENT ON COLUMN marts.period_status.months_final IS 'Months of the quarter whose spend is final (every export run behind them complete).';
COMMENT ON COLUMN marts.period_status.months_provisional IS 'Months with spend still provisional (being restated).';
COMMENT ON COLUMN marts.period_status.is_final IS 'true when all three months of the quarter are final.';
COMMENT ON COLUMN marts.period_status.dq_checks IS 'Data-quality results the period rests on (marts.period_data_quality).';
COMMENT ON COLUMN marts.period_status.dq_warnings IS 'Of them, failed warnings (published anyway).';
COMMENT ON COLUMN marts.period_status.dq_critical_failed IS 'Of them, failed critical checks (0 for a published period unless an input-file check failed in a run that still published).';
COMMENT ON COLUMN marts.period_status.quarantined_rows IS 'Rows quarantined from the inputs the period rests on (marts.period_quarantine).';
COMMENT ON COLUMN marts.period_status.quarantined_amount_by_currency IS 'Money at stake in those rows: {currency: exact decimal amount}.';
