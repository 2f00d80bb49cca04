-- A quarter carries no prior-period adjustment unless the pipeline says so: the adjustment
-- columns added in 005 default to 0, so an INSERT written before them still works.
SET LOCAL ROLE ledger_loader;

ALTER TABLE marts.quarterly_summary
    ALTER COLUMN revshare_paid_adjustment_usd SET DEFAULT 0,
    ALTER COLUMN revshare_received_adjustment_usd SET DEFAULT 0;
