"""Lake and ingest suites on tiny hand-built Spark DataFrames: each violation is caught by the
expectation of its configured check, with the exact count, and nothing else fails, on both of
GX's engines (`quality.runner.local_rows`: pandas for a small frame, Spark for a large one)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from inference_ledger import lake
from inference_ledger.quality import QualityConfig, QualityConfigError, lake_suites, runner
from inference_ledger.quality.lake_suites import (
    FRESHNESS_SUITE,
    LAKE_CHECKS,
    freshness_suite,
    key_hash_shared,
    lake_frames,
    table_frame,
    table_suite,
    validate_frames,
    with_freshness,
)
from tests.helpers import failed, lake_df

D = Decimal
CFG = QualityConfig.load()


@pytest.fixture(autouse=True, params=["pandas", "spark"])
def gx_engine(request, monkeypatch):
    """Each test on GX's pandas engine (a frame of up to LOCAL_MAX_ROWS rows, what a small run
    validates) and on its Spark engine (a bound of 0 sends every frame there, as a large one):
    the same expected results on both."""
    if request.param == "spark":
        monkeypatch.setattr(runner, "LOCAL_MAX_ROWS", 0)
    return request.param


def ts(day: str, hour: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def bill(**kw) -> dict:
    row = {
        "billing_month": "2024-01",
        "provider_name": "Microsoft",
        "billing_account_id": "ba",
        "scope_id": "scope-a",
        "charge_period_start": ts("2024-01-05"),
        "charge_period_end": ts("2024-01-06"),
        "usage_date": date(2024, 1, 5),
        "charge_category": "Usage",
        "service_name": "Azure OpenAI",
        "billed_cost": D("10.5"),
        "effective_cost": D("10.5"),
        "billing_currency": "USD",
        "billed_cost_usd": D("10.5"),
        "effective_cost_usd": D("10.5"),
        "fx_rate": D(1),
        "workload": "inference",
        "workload_rule": "tag",
        "source_file": "b.csv",
    }
    return row | kw


def use(project: str, **kw) -> dict:
    row = {
        "usage_month": "2024-01",
        "usage_date": date(2024, 1, 5),
        "channel": "openai",
        "bucket_start_at": ts("2024-01-05"),
        "bucket_end_at": ts("2024-01-06"),
        "project_id": project,
        "model": "gpt-4o",
        "input_tokens": 100,
        "input_cached_tokens": 10,
        "output_tokens": 5,
        "num_model_requests": 1,
        "source_file": "u.json",
    }
    return row | kw


def rev(entry: str, currency: str = "USD") -> dict:
    return {
        "entry_id": entry,
        "entry_version": 1,
        "revenue_date": date(2024, 1, 5),
        "product_line": "api",
        "amount": D("1.00"),
        "currency": currency,
        "fx_rate": D(1),
        "amount_usd": D("1.00"),
        "source_file": "r.csv",
    }


def fx(currency: str, day: str, rate: str) -> dict:
    return {
        "rate_date": date.fromisoformat(day),
        "currency": currency,
        "usd_per_unit": D(rate),
        "source_file": "fx.csv",
    }


def test_every_lake_violation_is_named_with_its_check_and_count(spark):
    tables = {
        "billing_lines": [
            bill(),
            # Ends exactly at the month boundary (exclusive end): inside.
            bill(charge_period_start=ts("2024-01-31"), charge_period_end=ts("2024-02-01")),
            # A charge period may outlast the month (a 1-year purchase invoiced in January)...
            bill(charge_period_start=ts("2024-01-01"), charge_period_end=ts("2025-01-01")),
            # ...but the line must be accounted inside its billing month, its period well formed.
            bill(usage_date=date(2024, 2, 1), source_file="late.csv", line_number=7),
            bill(charge_period_end=ts("2024-01-05"), source_file="backwards.csv", line_number=2),
            bill(billing_currency="XXY"),
            bill(billed_cost_usd=D("2000000000000")),
            bill(scope_id=None),
        ],
        "usage_facts": [
            use("p1"),
            use("p1", output_tokens=6),  # same natural key as the row before
            use("p2", input_cached_tokens=101),
            use("p3", output_tokens=-1),
            use("p4", input_tokens=2 * 10**15, input_cached_tokens=0),
            use("p5", channel=None),
            # No cached count is not one over the input (either engine: the pair skips it).
            use("p6", input_cached_tokens=None),
        ],
        "revenue_lines": [rev("e1"), rev("e1"), rev("e2", currency="usd")],
        "settlements": [],
        "contract_terms": [],
        "fx_rates": [fx("EUR", "2024-01-05", "1.09"), fx("EUR", "2024-01-05", "1.10")]
        + [fx("GBP", "2024-01-05", "0")],
        "prices": [],
    }
    frames = {
        f"lake.{t}": table_frame(lake_df(spark, t, rows), t, CFG) for t, rows in tables.items()
    }
    suites = {f"lake.{t}": table_suite(t, CFG) for t in LAKE_CHECKS}
    outcomes = validate_frames(frames, suites)
    assert {o.suite.name for o in outcomes} == {f"lake.{t}" for t in LAKE_CHECKS}
    c = "critical"
    assert failed(outcomes) == sorted(
        [
            ("lake.billing_lines", "required", c, "dq_required_missing", "1"),
            ("lake.billing_lines", "currency_iso", c, "billing_currency", "1"),
            ("lake.billing_lines", "amount_bounds", c, "dq_amount_out_of_bounds", "1"),
            (
                "lake.billing_lines",
                "charge_in_billing_period",
                c,
                "dq_charge_outside_billing_period",
                "2",
            ),
            ("lake.usage_facts", "keys", c, "dq_key_duplicate", "2"),
            ("lake.usage_facts", "keys", c, "dq_key_missing", "1"),
            ("lake.usage_facts", "token_bounds", c, "dq_tokens_out_of_bounds", "2"),
            ("lake.usage_facts", "cached_within_input", c, "input_cached_tokens", "1"),
            ("lake.revenue_lines", "keys", c, "entry_id", "2"),
            ("lake.revenue_lines", "currency_iso", c, "currency", "1"),
            ("lake.fx_rates", "keys", c, "dq_key_duplicate", "2"),
            ("lake.fx_rates", "amount_bounds", c, "dq_amount_out_of_bounds", "1"),
        ]
    )
    samples = {
        (r.suite, r.column_name): sorted(r.details["partial_unexpected_list"])
        for o in outcomes
        for r in o.checks
        if not r.success
    }
    # The dq_* columns say which column and value broke the rule.
    assert samples[("lake.usage_facts", "dq_tokens_out_of_bounds")] == [
        "input_tokens=2000000000000000",
        "output_tokens=-1",
    ]
    # Billing samples start with the line's file (and its line, where the lake has it).
    assert samples[("lake.billing_lines", "dq_amount_out_of_bounds")] == [
        "b.csv: billed_cost_usd=2000000000000.0000000000"
    ]
    assert samples[("lake.billing_lines", "dq_charge_outside_billing_period")] == [
        "backwards.csv:2: billing_month=2024-01 usage_date=2024-01-05"
        " charge_period=2024-01-05 00:00:00 .. 2024-01-05 00:00:00",
        "late.csv:7: billing_month=2024-01 usage_date=2024-02-01"
        " charge_period=2024-01-05 00:00:00 .. 2024-01-06 00:00:00",
    ]
    assert samples[("lake.billing_lines", "dq_required_missing")] == ["b.csv: scope_id is null"]
    assert samples[("lake.fx_rates", "dq_amount_out_of_bounds")] == ["usd_per_unit=0.0000000000"]
    # A repeated key names how many rows share it and its values.
    assert (
        samples[("lake.fx_rates", "dq_key_duplicate")]
        == ["key shared by 2 rows: currency=EUR rate_date=2024-01-05"] * 2
    )
    assert (
        samples[("lake.usage_facts", "dq_key_duplicate")]
        == [
            "key shared by 2 rows: channel=openai bucket_start_at=2024-01-05 00:00:00"
            " bucket_end_at=2024-01-06 00:00:00 project_id=p1 model=gpt-4o batch=null"
            " service_tier=null user_id=null api_key_id=null api_source=null"
        ]
        * 2
    )


def test_keys_that_only_share_a_hash_are_not_duplicates(spark):
    """Spark's xxhash64 skips nulls, so two keys that differ only in which column is null hash
    alike: the duplicate check must count them apart by their values."""
    rows = [
        use("p1", user_id="u", api_key_id=None),
        use("p1", user_id=None, api_key_id="u"),
        use("p1", user_id=None, api_key_id=None, batch=True),
        use("p1", user_id=None, api_key_id=None, batch=False),
    ]
    df = lake_df(spark, "usage_facts", rows)
    key = LAKE_CHECKS["usage_facts"][0]
    assert df.select(F.xxhash64(*key)).distinct().count() < len(rows)
    frame = table_frame(df, "usage_facts", CFG)
    assert [r.dq_key_duplicate for r in frame.collect()] == [None] * len(rows)


def test_a_key_proved_unique_by_its_hashes_skips_the_window(spark):
    """`key_hash_shared` is False only when no two rows share the key's hash, and then the
    frame's `dq_key_duplicate` is null without the window: the same frame as with it."""
    key = LAKE_CHECKS["usage_facts"][0]
    unique = lake_df(spark, "usage_facts", [use("p1"), use("p2"), use("p1", user_id="u")])
    repeated = lake_df(spark, "usage_facts", [use("p1"), use("p2"), use("p1", output_tokens=6)])
    # Two keys that differ only in which column is null hash alike (xxhash64 skips nulls).
    shifted = lake_df(spark, "usage_facts", [use("p1", user_id="u"), use("p1", api_key_id="u")])
    assert [key_hash_shared(df, key) for df in (unique, repeated, shifted)] == [
        False,
        True,
        True,
    ]
    windowed = table_frame(unique, "usage_facts", CFG)
    proved = table_frame(unique, "usage_facts", CFG, key_unique=True)
    assert proved.schema == windowed.schema
    assert sorted(proved.collect()) == sorted(windowed.collect())


@pytest.mark.parametrize("hash_from_bytes", [0, lake_suites.KEY_HASH_MIN_BYTES])
def test_the_lake_gate_counts_a_repeated_usage_key_in_the_runs_range(
    spark, tmp_path, monkeypatch, hash_from_bytes
):
    """The lake gate's usage frame (`lake_frames`) on a lake as the pipeline writes it: a key
    repeated inside the run's range fails `keys` with both rows counted; outside the range it
    passes. With the key's hashes checked first (a lake as large as KEY_HASH_MIN_BYTES, here
    made 0) and without."""
    monkeypatch.setattr(lake_suites, "KEY_HASH_MIN_BYTES", hash_from_bytes)
    rows = [use("p1"), use("p2"), use("p1", output_tokens=6)]
    rows.append(use("p3", usage_date=date(2024, 1, 9), bucket_start_at=ts("2024-01-09")))
    lake.write_table(lake_df(spark, "usage_facts", rows), tmp_path, "usage_facts")

    def keys_failed(start: date, end: date) -> list:
        usage = "lake.usage_facts"
        frame = lake_frames(spark, tmp_path, start, end, end, CFG)[usage]
        outcomes = validate_frames({usage: frame}, {usage: table_suite("usage_facts", CFG)})
        return [f for f in failed(outcomes) if f[1] == "keys"]

    assert keys_failed(date(2024, 1, 5), date(2024, 1, 6)) == [
        ("lake.usage_facts", "keys", "critical", "dq_key_duplicate", "2")
    ]
    assert keys_failed(date(2024, 1, 6), date(2024, 1, 10)) == []


def test_freshness_names_the_stalled_feed(spark):
    billing = lake_df(
        spark,
        "billing_lines",
        [
            bill(usage_date=date(2024, 3, 31)),
            bill(scope_id="scope-b", usage_date=date(2024, 3, 20)),
        ],
    )
    usage = lake_df(spark, "usage_facts", [use("p1", usage_date=date(2024, 3, 31))])
    by_data = with_freshness(billing, usage, None)
    assert sorted((r["feed"], r["lag_days"]) for r in by_data.collect()) == [
        ("billing:Microsoft:scope-a", 0),
        ("billing:Microsoft:scope-b", 11),
        ("usage:openai", 0),
    ]
    by_as_of = with_freshness(billing, usage, date(2024, 4, 2))
    assert sorted(r["lag_days"] for r in by_as_of.collect()) == [2, 2, 13]
    outcomes = validate_frames({FRESHNESS_SUITE: by_data}, {FRESHNESS_SUITE: freshness_suite(CFG)})
    assert failed(outcomes) == [(FRESHNESS_SUITE, "freshness", "warning", "lag_days", "1")]


def write_config(tmp_path, text: str):
    path = tmp_path / "quality.yaml"
    path.write_text(text)
    return path


def test_config_is_typed_and_complete(tmp_path):
    assert CFG.severity("control_totals") == "critical"
    assert CFG.severity("spend_jump") == "warning"
    assert CFG.max_quarantine_rate == D("0.05") and CFG.max_spend_factor == D("3")
    default = Path(CFG.source).read_text()
    with pytest.raises(QualityConfigError, match=r"missing \['spend_jump'\]"):
        QualityConfig.load(write_config(tmp_path, default.split("  spend_jump:")[0]))
    with pytest.raises(QualityConfigError, match="checks.keys.severity must be one of"):
        QualityConfig.load(
            write_config(tmp_path, default.replace("severity: critical", "severity: fatal", 1))
        )
    with pytest.raises(QualityConfigError, match="max_rate must be quoted"):
        QualityConfig.load(
            write_config(tmp_path, default.replace('max_rate: "0.05"', "max_rate: 0.05"))
        )
    # schemas/config/quality.schema.json names every broken setting at once.
    broken = (
        default.replace("max_lag_days: 3", "max_lag_days: -1\n    max_age: 2")
        .replace("reference: data", "reference: today")
        .replace("max_tokens: 100000000000000", 'max_tokens: "many"')
    )
    with pytest.raises(QualityConfigError) as error:
        QualityConfig.load(write_config(tmp_path, broken))
    assert str(error.value).split(": ", 1)[1].split("; ") == [
        "checks.freshness: unknown setting(s) ['max_age']",
        "checks.freshness.max_lag_days must be a whole number >= 0, got -1",
        "checks.freshness.reference must be one of ('data', 'as_of'), got 'today'",
        "checks.token_bounds.max_tokens must be a whole number >= 0, got 'many'",
    ]
    with pytest.raises(QualityConfigError, match="max_factor must be > 1"):
        QualityConfig.load(
            write_config(tmp_path, default.replace('max_factor: "3"', 'max_factor: "1"'))
        )
    relaxed = QualityConfig.load(
        write_config(
            tmp_path,
            default.replace(
                "  freshness:                  # a billing scope or usage channel with no new data\n"
                "    severity: warning",
                "  freshness:\n    severity: critical",
            ),
        )
    )
    assert relaxed.severity("freshness") == "critical"
