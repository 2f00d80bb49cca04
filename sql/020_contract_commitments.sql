-- Issue 18, commitments from the bill: the FOCUS 1.3 Contract Commitment dataset is read (lake
-- table contract_commitments) and a bill's ContractApplied measures what each charge consumed.
-- marts.commitment_burndown says per row how consumption was measured (consumption_basis);
-- every row published before this migration was measured by eligible services and meters.
-- Descriptions are those of schemas/marts/commitment_burndown.schema.json.
SET LOCAL ROLE ledger_loader;

ALTER TABLE marts.commitment_burndown
    ADD COLUMN consumption_basis text NOT NULL DEFAULT 'eligible services and meters';
ALTER TABLE marts.commitment_burndown ALTER COLUMN consumption_basis DROP DEFAULT;
ALTER TABLE staging.commitment_burndown ADD COLUMN consumption_basis text;

COMMENT ON COLUMN marts.commitment_burndown.commitment_id IS 'Commitment: finance/commitments commitment_id, or the bill''s FOCUS ContractCommitmentId (a Spend commitment of the Contract Commitment dataset the feed does not name)';
COMMENT ON COLUMN marts.commitment_burndown.counterparty IS 'Who the commitment is with (finance/commitments counterparty; for a commitment from the bill, its ServiceProviderName)';
COMMENT ON COLUMN marts.commitment_burndown.eligible_spend_usd IS 'Consumption of the month: what the bill''s ContractApplied applied to the commitment (ContractCommitmentAppliedCost at the line''s FX rate) when any charge names it, else the billed cost of the month''s billing lines inside the term that an eligible service or meter names (consumption_basis), USD (exact decimal, 10 places)';
COMMENT ON COLUMN marts.commitment_burndown.consumption_basis IS 'How eligible_spend_usd is measured: ContractApplied (the bill says what each charge consumed of the commitment) or eligible services and meters (finance/commitments eligible_services / eligible_meters match billing lines)';
