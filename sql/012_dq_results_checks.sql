-- Data quality as the gate (issue 6): every validation result of the lake, ingest and staging
-- suites lands in audit.dq_results (004). This adds which configured check an expectation
-- belongs to (config/quality.yaml) and when it was validated, as opposed to recorded.
SET LOCAL ROLE ledger_loader;

ALTER TABLE audit.dq_results
    ADD COLUMN check_name  text,
    ADD COLUMN checked_at  timestamptz;
UPDATE audit.dq_results SET checked_at = recorded_at WHERE checked_at IS NULL;
ALTER TABLE audit.dq_results ALTER COLUMN checked_at SET DEFAULT now();
ALTER TABLE audit.dq_results ALTER COLUMN checked_at SET NOT NULL;
CREATE INDEX dq_results_run_id_severity_idx ON audit.dq_results (run_id, severity) WHERE NOT success;
COMMENT ON TABLE audit.dq_results IS
    'One row per expectation per suite per run (lake.*, ingest.*, staging.*); a failed critical one blocks publishing, a failed warning is published and reported.';
COMMENT ON COLUMN audit.dq_results.check_name IS 'The check in config/quality.yaml that set its severity and threshold.';
