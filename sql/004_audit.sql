-- The audit trail: every run, every input file, the quarantine, data-quality results, control
-- totals, closed and published periods (DESIGN.md "Outputs"). Plus staging.control_totals,
-- the lake side of a run's control totals, loaded by COPY next to the staged marts.
SET LOCAL ROLE ledger_loader;

CREATE TABLE audit.runs (
    run_id        text PRIMARY KEY,
    command       text NOT NULL,
    status        text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    period_start  date,
    period_end    date,  -- exclusive
    landing_dir   text,
    spark_master  text,
    error         text
);
COMMENT ON TABLE audit.runs IS 'One row per pipeline run (ledger run, demo, close); status running -> succeeded | failed.';

-- Every input row is accounted for: the CHECK makes a run that lost or double-counted rows
-- impossible to record.
CREATE TABLE audit.input_files (
    run_id             text NOT NULL REFERENCES audit.runs (run_id),
    source             text NOT NULL,
    path               text NOT NULL,
    checksum_sha256    text NOT NULL,
    byte_count         bigint NOT NULL CHECK (byte_count >= 0),
    rows_read          bigint NOT NULL CHECK (rows_read >= 0),
    rows_loaded        bigint NOT NULL CHECK (rows_loaded >= 0),
    rows_quarantined   bigint NOT NULL CHECK (rows_quarantined >= 0),
    rows_superseded    bigint NOT NULL CHECK (rows_superseded >= 0),
    rows_deduplicated  bigint NOT NULL CHECK (rows_deduplicated >= 0),
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, path),
    CONSTRAINT input_files_rows_tie_out CHECK (
        rows_read = rows_loaded + rows_quarantined + rows_superseded + rows_deduplicated
    )
);
COMMENT ON TABLE audit.input_files IS 'One row per input file per run: rows read = loaded + quarantined + superseded + deduplicated.';

CREATE TABLE audit.quarantine (
    quarantine_id  bigserial PRIMARY KEY,
    run_id         text NOT NULL REFERENCES audit.runs (run_id),
    source         text NOT NULL,
    path           text NOT NULL,
    line_number    bigint,
    field          text,
    reason         text NOT NULL,
    raw_record     text,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_run_id_path_idx ON audit.quarantine (run_id, path);
COMMENT ON TABLE audit.quarantine IS 'Input rows not loaded, with the reason; nothing is dropped silently.';

CREATE TABLE audit.dq_results (
    dq_result_id    bigserial PRIMARY KEY,
    run_id          text NOT NULL REFERENCES audit.runs (run_id),
    suite           text NOT NULL,
    expectation     text NOT NULL,
    column_name     text,
    severity        text NOT NULL CHECK (severity IN ('critical', 'warning')),
    success         boolean NOT NULL,
    observed_value  text,
    details         jsonb,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dq_results_run_id_idx ON audit.dq_results (run_id);
COMMENT ON TABLE audit.dq_results IS 'Data-quality expectation results of the staged batch; a failed critical one blocks publishing.';

CREATE TABLE audit.control_totals (
    run_id         text NOT NULL REFERENCES audit.runs (run_id),
    table_name     text NOT NULL,
    period_label   text NOT NULL,
    currency       text NOT NULL,
    lake_amount    numeric(38,10),
    staged_amount  numeric(38,10),
    lake_rows      bigint,
    staged_rows    bigint,
    PRIMARY KEY (run_id, table_name, period_label, currency)
);
COMMENT ON TABLE audit.control_totals IS 'Money in = money out: lake totals vs staged totals per table, period and currency.';

CREATE TABLE audit.closed_periods (
    period_label     text PRIMARY KEY,
    closed_at        timestamptz NOT NULL DEFAULT now(),
    closed_by        text NOT NULL,
    snapshot_sha256  text NOT NULL,
    snapshot         jsonb NOT NULL,
    reopened_at      timestamptz,
    reopened_by      text,
    CHECK ((reopened_at IS NULL) = (reopened_by IS NULL))
);
COMMENT ON TABLE audit.closed_periods IS 'Closed periods do not move; later changes post as prior-period adjustments.';

CREATE TABLE audit.published_periods (
    table_name    text NOT NULL,
    period_value  text NOT NULL,
    run_id        text NOT NULL REFERENCES audit.runs (run_id),
    published_at  timestamptz NOT NULL DEFAULT now(),
    row_count     bigint NOT NULL CHECK (row_count >= 0),
    PRIMARY KEY (table_name, period_value)
);
CREATE INDEX published_periods_run_id_idx ON audit.published_periods (run_id);
COMMENT ON TABLE audit.published_periods IS 'Which run last published each period of each mart.';

CREATE TABLE staging.control_totals (
    table_name    text,
    period_label  text,
    currency      text,
    amount        numeric(38,10),
    row_count     bigint
);
COMMENT ON TABLE staging.control_totals IS 'Lake-side control totals of the run being published, loaded by COPY.';
