-- Close is a sign-off (issue 15 point 6): a period with open reconciliation exceptions or
-- failed critical data-quality checks closes only when someone accepts them with a reason
-- (ledger close --accept-exceptions --reason, or the close DAG's params). What was accepted is
-- kept with the close; who and when are the close's own closed_by / closed_at (event_by /
-- event_at). The rule itself lives in inference_ledger.close.
SET LOCAL ROLE ledger_loader;

-- Grain: one row per period, agreement, direction and adjustment flag whose reconciliation
-- status is an exception (anything but matched or pending). An adjustment row counts in the
-- open period it is posted into, like every other figure of that row.
CREATE VIEW marts.reconciliation_exceptions AS
SELECT period_label,
       agreement_id,
       direction,
       is_adjustment,
       counterparty,
       status,
       expected_usd,
       settled_usd,
       variance_usd,
       variance_pct,
       tolerance_usd,
       payment_due_date,
       statement_ids,
       adjustment_of_period
FROM marts.revshare_reconciliation
WHERE status NOT IN ('matched', 'pending');
COMMENT ON VIEW marts.reconciliation_exceptions IS
    'Grain: one row per period, agreement, direction and adjustment flag whose reconciliation status is an exception (not matched, not pending): what a period''s close must accept or see fixed.';
COMMENT ON COLUMN marts.reconciliation_exceptions.period_label IS 'Calendar quarter the row is published in, e.g. 2024-Q1 (for an adjustment row, the open quarter it is posted into).';
COMMENT ON COLUMN marts.reconciliation_exceptions.agreement_id IS 'Revenue-share agreement (contract) id.';
COMMENT ON COLUMN marts.reconciliation_exceptions.direction IS 'payable (we pay the partner) or receivable (the partner pays us).';
COMMENT ON COLUMN marts.reconciliation_exceptions.is_adjustment IS 'true for a prior-period adjustment row: its money columns are recomputed minus closed figures of adjustment_of_period.';
COMMENT ON COLUMN marts.reconciliation_exceptions.counterparty IS 'Partner named on the agreement.';
COMMENT ON COLUMN marts.reconciliation_exceptions.status IS 'missing_settlement (due, nothing settled), unexpected_settlement (settled, nothing expected), underpaid or overpaid (settled differs from expected by more than tolerance_usd).';
COMMENT ON COLUMN marts.reconciliation_exceptions.expected_usd IS 'What the contract terms say is owed, USD (exact decimal); null when nothing is expected.';
COMMENT ON COLUMN marts.reconciliation_exceptions.settled_usd IS 'What the effective settlement statements say was paid, USD (exact decimal); null when nothing was settled.';
COMMENT ON COLUMN marts.reconciliation_exceptions.variance_usd IS 'settled_usd - expected_usd (a missing expected_usd counts as 0), USD (exact decimal): negative = paid less than owed; null when nothing was settled.';
COMMENT ON COLUMN marts.reconciliation_exceptions.variance_pct IS 'variance_usd / expected_usd (a fraction, 0.01 = 1 percent); null when nothing is expected or expected is 0.';
COMMENT ON COLUMN marts.reconciliation_exceptions.tolerance_usd IS 'Tolerance the status was judged with, USD: max(tolerance_abs, tolerance_pct x |expected|).';
COMMENT ON COLUMN marts.reconciliation_exceptions.payment_due_date IS 'period_end + payment terms: the date from which a missing settlement is an exception.';
COMMENT ON COLUMN marts.reconciliation_exceptions.statement_ids IS 'Comma-separated effective settlement statements behind settled_usd.';
COMMENT ON COLUMN marts.reconciliation_exceptions.adjustment_of_period IS 'Adjustment rows: the closed period(s) whose late changes the row posts, comma-separated; null otherwise.';

-- What a close accepted. A clean close accepts nothing (counts 0, lists null); a close that
-- accepted anything states why.
ALTER TABLE audit.closed_periods
    ADD COLUMN accepted_exception_count   integer NOT NULL DEFAULT 0
        CHECK (accepted_exception_count >= 0),
    ADD COLUMN accepted_exceptions        jsonb,
    ADD COLUMN accepted_dq_failure_count  integer NOT NULL DEFAULT 0
        CHECK (accepted_dq_failure_count >= 0),
    ADD COLUMN accepted_dq_failures       jsonb,
    ADD COLUMN acceptance_reason          text,
    ADD CONSTRAINT closed_periods_acceptance_reason CHECK (
        accepted_exception_count + accepted_dq_failure_count = 0 OR acceptance_reason IS NOT NULL
    );
COMMENT ON COLUMN audit.closed_periods.closed_at IS 'When the period was (last) closed: also when its sign-off accepted what is in accepted_exceptions / accepted_dq_failures.';
COMMENT ON COLUMN audit.closed_periods.closed_by IS 'Who closed it (ledger close --by, the OS user, or airflow:<dag>/<run>): also who accepted its exceptions.';
COMMENT ON COLUMN audit.closed_periods.accepted_exception_count IS 'Reconciliation exceptions (marts.reconciliation_exceptions rows) of the period accepted at close (count); 0 for a clean close.';
COMMENT ON COLUMN audit.closed_periods.accepted_exceptions IS 'Those exceptions as a JSON array of {agreement_id, direction, is_adjustment, adjustment_of_period, status, expected_usd, settled_usd, variance_usd, tolerance_usd, payment_due_date}; money as exact decimal strings in USD; null when none was accepted.';
COMMENT ON COLUMN audit.closed_periods.accepted_dq_failure_count IS 'Failed critical data-quality results the period rests on (marts.period_data_quality) accepted at close (count); 0 for a clean close.';
COMMENT ON COLUMN audit.closed_periods.accepted_dq_failures IS 'Those results as a JSON array of {run_id, suite, expectation, column_name, check_name, observed_value}; null when none was accepted.';
COMMENT ON COLUMN audit.closed_periods.acceptance_reason IS 'Why the exceptions were accepted (ledger close --accept-exceptions --reason, or the close DAG''s reason param); null for a close that accepted nothing.';

ALTER TABLE audit.period_close_events
    ADD COLUMN accepted_exception_count   integer NOT NULL DEFAULT 0
        CHECK (accepted_exception_count >= 0),
    ADD COLUMN accepted_exceptions        jsonb,
    ADD COLUMN accepted_dq_failure_count  integer NOT NULL DEFAULT 0
        CHECK (accepted_dq_failure_count >= 0),
    ADD COLUMN accepted_dq_failures       jsonb,
    ADD CONSTRAINT period_close_events_acceptance CHECK (
        accepted_exception_count + accepted_dq_failure_count = 0
        OR (event = 'closed' AND reason IS NOT NULL)
    );
COMMENT ON COLUMN audit.period_close_events.event_id IS 'Order of the events (bigserial).';
COMMENT ON COLUMN audit.period_close_events.period_label IS 'Calendar quarter, e.g. 2024-Q1.';
COMMENT ON COLUMN audit.period_close_events.event IS 'closed or reopened.';
COMMENT ON COLUMN audit.period_close_events.event_at IS 'When it happened (for a close that accepted exceptions: when they were accepted).';
COMMENT ON COLUMN audit.period_close_events.event_by IS 'Who did it (for a close that accepted exceptions: who accepted them).';
COMMENT ON COLUMN audit.period_close_events.reason IS 'reopened: why (ledger reopen --reason); closed: why its exceptions were accepted (--accept-exceptions --reason), null for a clean close.';
COMMENT ON COLUMN audit.period_close_events.snapshot_sha256 IS 'closed: SHA-256 of the snapshot taken (audit.closed_periods.snapshot); null for a reopen.';
COMMENT ON COLUMN audit.period_close_events.accepted_exception_count IS 'closed: reconciliation exceptions accepted (count); 0 otherwise.';
COMMENT ON COLUMN audit.period_close_events.accepted_exceptions IS 'closed: the exceptions accepted, as in audit.closed_periods.accepted_exceptions; null when none.';
COMMENT ON COLUMN audit.period_close_events.accepted_dq_failure_count IS 'closed: failed critical data-quality results accepted (count); 0 otherwise.';
COMMENT ON COLUMN audit.period_close_events.accepted_dq_failures IS 'closed: the results accepted, as in audit.closed_periods.accepted_dq_failures; null when none.';
