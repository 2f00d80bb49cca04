"""finance/commitments/*.csv on tiny hand-built files: every row loaded, deduplicated or
quarantined with its field and reason; amounts to USD at the rate of the term's start."""

from __future__ import annotations

import pytest

from inference_ledger.ingest import finance
from inference_ledger.ingest import records as R
from inference_ledger.steps.ingest_finance import checked_fx
from tests.helpers import D
from tests.test_ingest_finance import _csv, _outcomes, eur_january  # noqa: F401

HEADER = (
    "commitment_id,counterparty,amount,currency,start_date,end_date,eligible_services,"
    "eligible_meters,provider,note"
)


def test_commitment_rows_are_each_accounted_for(spark, tmp_path, eur_january):  # noqa: F811
    _csv(
        tmp_path / "finance/commitments/a.csv",
        HEADER,
        "MACC-1,Microsoft,1000000.50,USD,2024-01-01,2026-01-01,Foundry Models|Virtual Machines,,Microsoft,",
        "MACC-2,Microsoft,100.00,EUR,2024-01-10,2024-07-01,,gpt 4.1 Inp regnl Tokens,,in euros",
        "MACC-3,Microsoft,0,USD,2024-01-01,2025-01-01,*,,,",
        "MACC-4,Microsoft,10.00,USD,2024-06-01,2024-05-01,*,,,",
        "MACC-5,Microsoft,10.00,USD,2024-01-01,2025-01-01,,,,",
        "MACC-6,Microsoft,10.00,usd,2024-01-01,2025-01-01,*,,,",
        "MACC-7,Microsoft,10.00,USD,01/01/2024,2025-01-01,*,,,",
    )  # fmt: skip
    _csv(
        tmp_path / "finance/commitments/b.csv",
        HEADER,
        "MACC-1,Microsoft,1000000.50,USD,2024-01-01,2026-01-01,Foundry Models|Virtual Machines,,Microsoft,again",
        "MACC-2,Microsoft,200.00,EUR,2024-01-10,2024-07-01,,gpt 4.1 Inp regnl Tokens,,other amount",
    )  # fmt: skip
    rows = finance.read_feed(spark, tmp_path, "commitments")
    records = finance.commitment_records(rows, eur_january)
    assert _outcomes(records) == [
        ("deduplicated", "exact duplicate row", "", "b.csv"),
        ("loaded", "", "", "a.csv"),
        ("loaded", "", "", "a.csv"),
        ("quarantined", "amount must be greater than 0", "amount", "a.csv"),
        ("quarantined", "conflicting duplicate of ['commitment_id']", "commitment_id", "b.csv"),
        ("quarantined", "currency does not match ^[A-Z]{3}$", "currency", "a.csv"),
        ("quarantined", "end_date must be after start_date", "end_date", "a.csv"),
        (
            "quarantined",
            "name eligible_services or eligible_meters (or * for every service)",
            "eligible_services",
            "a.csv",
        ),  # fmt: skip
        ("quarantined", "start_date is not an ISO date (YYYY-MM-DD)", "start_date", "a.csv"),
    ]
    loaded = {
        r["commitment_id"]: (r["amount_usd"], r["fx_rate"], r["eligible_services"], r["provider"])
        for r in records.filter(records.status == R.LOADED).collect()
    }
    assert loaded == {
        "MACC-1": (D("1000000.50"), D("1"), "Foundry Models|Virtual Machines", "Microsoft"),
        "MACC-2": (D("110.00"), D("1.1"), None, None),
    }
    # The quarantine keeps the row as delivered, so a person can find and fix it.
    bad = records.filter(records.field == "amount").first()
    assert "MACC-3" in bad["raw_record"]


def test_commitment_without_fx_rate_names_currency_and_date(spark, tmp_path, eur_january):  # noqa: F811
    _csv(
        tmp_path / "finance/commitments/a.csv",
        HEADER,
        "M,Microsoft,10.00,GBP,2024-01-01,2025-01-01,*,,,",
    )
    records = finance.commitment_records(
        finance.read_feed(spark, tmp_path, "commitments"), eur_january
    )
    with pytest.raises(
        R.InputError, match="finance/commitments: no FX rate to USD for GBP on 2024-01-01"
    ):
        checked_fx(records, "finance/commitments", "currency", "start_date")


def test_commitment_file_without_a_required_column_is_an_error(spark, tmp_path):
    _csv(
        tmp_path / "finance/commitments/a.csv",
        "commitment_id,counterparty,amount,currency,start_date,eligible_services",
        "M,Microsoft,10.00,USD,2024-01-01,*",
    )
    with pytest.raises(R.InputError, match="end_date"):
        finance.read_feed(spark, tmp_path, "commitments")
