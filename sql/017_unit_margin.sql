-- Issue 18, unit margin: marts.unit_margin_monthly (one row per month, channel and model:
-- revenue, inference cost and revenue share attributed to the model, margin per 1M tokens;
-- config/unit_margin_allocation.yaml) and its staging twin. Generated from
-- schemas/marts/unit_margin_monthly.schema.json by inference_ledger.db.ddl.table_sql;
-- tests/test_db_contracts.py checks the live tables against the contract.
-- Created as ledger_loader: the loader owns them, and its default privileges apply (analysts
-- read marts).
SET LOCAL ROLE ledger_loader;

CREATE TABLE marts.unit_margin_monthly (
    usage_month               date NOT NULL,
    channel                   text NOT NULL,
    model                     text NOT NULL,
    total_tokens              bigint NOT NULL,
    revenue_basis             text NOT NULL,
    revenue_usd               numeric(38,10) NOT NULL,
    inference_cost_usd        numeric(38,10) NOT NULL,
    revshare_paid_usd         numeric(38,10) NOT NULL,
    margin_usd                numeric(38,10) NOT NULL,
    margin_per_1m_tokens_usd  numeric(38,10),
    allocation_version        bigint NOT NULL,
    PRIMARY KEY (usage_month, channel, model)
);
COMMENT ON TABLE marts.unit_margin_monthly IS 'Grain: one row per month, channel and model.';
COMMENT ON COLUMN marts.unit_margin_monthly.usage_month IS 'Calendar month: its first day (date); joins unit_cost_monthly.usage_month';
COMMENT ON COLUMN marts.unit_margin_monthly.channel IS 'Usage channel (openai = first-party, azure_openai = the partner''s resale; config/unit_margin_allocation.yaml)';
COMMENT ON COLUMN marts.unit_margin_monthly.model IS 'Model name as the usage API reports it; (unattributed) for money of a month or statement period with no usage of the channel to attribute it to';
COMMENT ON COLUMN marts.unit_margin_monthly.total_tokens IS 'Input + output tokens of the model in the month, as unit_cost_monthly.total_tokens (count); 0 on (unattributed) rows';
COMMENT ON COLUMN marts.unit_margin_monthly.revenue_basis IS 'What revenue_usd is: first_party_revenue (the first-party channel), revshare_received (the partner channel) or none';
COMMENT ON COLUMN marts.unit_margin_monthly.revenue_usd IS 'Revenue attributed to the model: first-party channel, the month''s revenue ledger (amount_usd of the configured product lines) allocated by usage weight; partner channel, the revenue share received (effective receivable statements) spread over months and models; USD (exact decimal, 10 places)';
COMMENT ON COLUMN marts.unit_margin_monthly.inference_cost_usd IS 'Inference spend allocated to the model: unit_cost_monthly.allocated_spend_usd of the same month, channel and model; USD (exact decimal, 10 places)';
COMMENT ON COLUMN marts.unit_margin_monthly.revshare_paid_usd IS 'Revenue share paid (effective payable statements) attributable to the model: spread over the statement period''s months by basis revenue, then over the channel''s models by usage weight; USD (exact decimal, 10 places)';
COMMENT ON COLUMN marts.unit_margin_monthly.margin_usd IS 'revenue_usd - inference_cost_usd - revshare_paid_usd; USD (exact decimal, 10 places)';
COMMENT ON COLUMN marts.unit_margin_monthly.margin_per_1m_tokens_usd IS 'margin_usd / total_tokens x 1,000,000: USD per million tokens (exact decimal, 10 places); null when total_tokens is 0';
COMMENT ON COLUMN marts.unit_margin_monthly.allocation_version IS 'version of config/unit_margin_allocation.yaml the row was computed with';

CREATE TABLE staging.unit_margin_monthly (
    usage_month               date,
    channel                   text,
    model                     text,
    total_tokens              bigint,
    revenue_basis             text,
    revenue_usd               numeric(38,10),
    inference_cost_usd        numeric(38,10),
    revshare_paid_usd         numeric(38,10),
    margin_usd                numeric(38,10),
    margin_per_1m_tokens_usd  numeric(38,10),
    allocation_version        bigint
);
COMMENT ON TABLE staging.unit_margin_monthly IS 'Write/audit copy of marts.unit_margin_monthly: no constraints, so a bad batch still loads and the data-quality audit reports it instead of a constraint rejecting it.';
