-- Incremental ingest (issue 3): a file a succeeded run already ingested with the same checksum
-- is not read again; the run records it as skipped (zero rows, so nothing is counted twice).
SET LOCAL ROLE ledger_loader;

ALTER TABLE audit.input_files ADD COLUMN is_skipped boolean NOT NULL DEFAULT false;
CREATE INDEX input_files_path_idx ON audit.input_files (path, recorded_at DESC);
