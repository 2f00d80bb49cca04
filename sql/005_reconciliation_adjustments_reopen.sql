-- Issue 5: reconciliation explanations, the usage x price-sheet cross-check of the reported
-- direction, prior-period adjustments, and reopening closed periods (with a history).
-- Mart columns are appended to the contracts in schemas/marts/ (ADD COLUMN puts them last, in
-- the contracts' order); tests/test_db_contracts.py checks the live tables against them.
SET LOCAL ROLE ledger_loader;

ALTER TABLE marts.revshare_reconciliation
    ADD COLUMN basis_definition             text,
    ADD COLUMN basis_entry_count            bigint,
    ADD COLUMN statement_basis_usd          numeric(38,10),
    ADD COLUMN superseded_statement_ids     text,
    ADD COLUMN tolerance_usd                numeric(38,10),
    ADD COLUMN payment_due_date             date,
    ADD COLUMN usage_estimate_usd           numeric(38,10),
    ADD COLUMN usage_estimate_variance_usd  numeric(38,10),
    ADD COLUMN usage_estimate_variance_pct  numeric(18,10),
    ADD COLUMN usage_unpriced_tokens        bigint,
    ADD COLUMN adjustment_of_period         text,
    ADD COLUMN adjustment_reason            text,
    ADD COLUMN adjustment_inputs            text;

ALTER TABLE staging.revshare_reconciliation
    ADD COLUMN basis_definition             text,
    ADD COLUMN basis_entry_count            bigint,
    ADD COLUMN statement_basis_usd          numeric(38,10),
    ADD COLUMN superseded_statement_ids     text,
    ADD COLUMN tolerance_usd                numeric(38,10),
    ADD COLUMN payment_due_date             date,
    ADD COLUMN usage_estimate_usd           numeric(38,10),
    ADD COLUMN usage_estimate_variance_usd  numeric(38,10),
    ADD COLUMN usage_estimate_variance_pct  numeric(18,10),
    ADD COLUMN usage_unpriced_tokens        bigint,
    ADD COLUMN adjustment_of_period         text,
    ADD COLUMN adjustment_reason            text,
    ADD COLUMN adjustment_inputs            text;

COMMENT ON COLUMN marts.revshare_reconciliation.basis_definition IS 'The agreement''s basis term: revenue:<product_line>|... or reported';
COMMENT ON COLUMN marts.revshare_reconciliation.basis_entry_count IS 'Revenue-ledger entries (effective versions) in the basis; revenue: agreements only';
COMMENT ON COLUMN marts.revshare_reconciliation.statement_basis_usd IS 'Basis reported on the effective statements';
COMMENT ON COLUMN marts.revshare_reconciliation.superseded_statement_ids IS 'Comma-separated statements the effective ones replaced';
COMMENT ON COLUMN marts.revshare_reconciliation.tolerance_usd IS 'Tolerance applied: max(tolerance_abs, tolerance_pct x |expected|)';
COMMENT ON COLUMN marts.revshare_reconciliation.payment_due_date IS 'period_end + payment terms; status is pending before it';
COMMENT ON COLUMN marts.revshare_reconciliation.usage_estimate_usd IS 'reported agreements: usage of channel azure_openai priced with the price sheet, on the days the terms are in effect';
COMMENT ON COLUMN marts.revshare_reconciliation.usage_estimate_variance_usd IS 'basis_usd - usage_estimate_usd';
COMMENT ON COLUMN marts.revshare_reconciliation.usage_estimate_variance_pct IS 'usage_estimate_variance_usd / usage_estimate_usd';
COMMENT ON COLUMN marts.revshare_reconciliation.usage_unpriced_tokens IS 'Tokens left out of the usage estimate: no USD price in effect';
COMMENT ON COLUMN marts.revshare_reconciliation.adjustment_of_period IS 'Adjustment rows: the closed period(s) whose late changes this row posts, comma-separated';
COMMENT ON COLUMN marts.revshare_reconciliation.adjustment_reason IS 'Adjustment rows: what changed in the closed period(s), recomputed vs closed figures';
COMMENT ON COLUMN marts.revshare_reconciliation.adjustment_inputs IS 'Adjustment rows: input files new, changed or removed since the run that published the closed figures';
COMMENT ON COLUMN marts.revshare_reconciliation.rate IS 'Contract rate in effect: uncapped expected / basis (a mid-period change blends by revenue date); the term''s rate when there is no basis';
COMMENT ON COLUMN marts.revshare_reconciliation.status IS 'By the agreement''s tolerance and payment terms as of the run''s date; on an adjustment row, the corrected period''s status after the adjustment';
COMMENT ON COLUMN marts.revshare_reconciliation.cap_used_usd IS 'Cumulative capped expected to this period (null on adjustment rows)';
COMMENT ON COLUMN marts.revshare_reconciliation.is_adjustment IS 'Prior-period adjustment posted into this open period: money columns are recomputed minus closed figures';

ALTER TABLE marts.quarterly_summary
    ADD COLUMN revshare_paid_adjustment_usd      numeric(38,10) NOT NULL DEFAULT 0,
    ADD COLUMN revshare_received_adjustment_usd  numeric(38,10) NOT NULL DEFAULT 0;
-- Existing rows carry no adjustment; new rows always state it.
ALTER TABLE marts.quarterly_summary
    ALTER COLUMN revshare_paid_adjustment_usd DROP DEFAULT,
    ALTER COLUMN revshare_received_adjustment_usd DROP DEFAULT;

ALTER TABLE staging.quarterly_summary
    ADD COLUMN revshare_paid_adjustment_usd      numeric(38,10),
    ADD COLUMN revshare_received_adjustment_usd  numeric(38,10);

COMMENT ON COLUMN marts.quarterly_summary.revshare_paid_adjustment_usd IS 'Part of revshare_paid_usd that is prior-period adjustments posted into this quarter';
COMMENT ON COLUMN marts.quarterly_summary.revshare_received_adjustment_usd IS 'Part of revshare_received_usd that is prior-period adjustments posted into this quarter';

-- Reopening is an explicit, recorded act: who, when and why; every close and reopen is kept
-- in audit.period_close_events (audit.closed_periods holds the current state per period).
ALTER TABLE audit.closed_periods ADD COLUMN reopen_reason text;
UPDATE audit.closed_periods SET reopen_reason = '(not recorded)' WHERE reopened_at IS NOT NULL;
ALTER TABLE audit.closed_periods
    ADD CONSTRAINT closed_periods_reopen_reason CHECK ((reopened_at IS NULL) = (reopen_reason IS NULL));
COMMENT ON COLUMN audit.closed_periods.reopen_reason IS 'Why the period was reopened (ledger reopen --reason)';

CREATE TABLE audit.period_close_events (
    event_id         bigserial PRIMARY KEY,
    period_label     text NOT NULL,
    event            text NOT NULL CHECK (event IN ('closed', 'reopened')),
    event_at         timestamptz NOT NULL DEFAULT now(),
    event_by         text NOT NULL,
    reason           text,
    snapshot_sha256  text,
    CHECK (event = 'closed' OR reason IS NOT NULL)
);
CREATE INDEX period_close_events_period_idx ON audit.period_close_events (period_label, event_at);
COMMENT ON TABLE audit.period_close_events IS 'Every close and reopen of a period: who, when, why, and the snapshot checksum of a close.';

INSERT INTO audit.period_close_events (period_label, event, event_at, event_by, snapshot_sha256)
SELECT period_label, 'closed', closed_at, closed_by, snapshot_sha256 FROM audit.closed_periods;
INSERT INTO audit.period_close_events (period_label, event, event_at, event_by, reason)
SELECT period_label, 'reopened', reopened_at, reopened_by, reopen_reason
FROM audit.closed_periods WHERE reopened_at IS NOT NULL;
