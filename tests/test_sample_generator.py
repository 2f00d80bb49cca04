"""The sample landing-data generator, checked from the raw files it writes.

The checks parse the files with csv/json/gzip and the contracts in schemas/inputs, not with the
generator's own code, so they hold the files to what the pipeline will see.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from inference_ledger.sample import SCENARIO_QUARTERS, GenerationSummary, generate_landing
from inference_ledger.sample.allocate import allocate_cents, allocate_int

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas" / "inputs"
RATE = Decimal("0.20")
FINANCE_HEADERS = {
    "revenue": "entry_id,entry_version,revenue_date,product_line,amount,currency,description",
    "settlements": (
        "statement_id,supersedes_statement_id,agreement_id,direction,counterparty,period_start,"
        "period_end,reported_basis_amount,rate,amount,currency,statement_date,payment_date,"
        "reference"
    ),
    "contracts": (
        "agreement_id,direction,counterparty,basis,rate,effective_from,effective_to,cap_amount,"
        "cap_currency,tolerance_abs,tolerance_pct,payment_terms_days"
    ),
    "fx": "rate_date,currency,usd_per_unit",
    "prices": "channel,model,token_type,unit_tokens,unit_price,currency,effective_from,effective_to",
}
FINANCE_SCHEMAS = {
    "revenue": "finance_revenue",
    "settlements": "finance_settlements",
    "contracts": "finance_contracts",
    "fx": "finance_fx",
    "prices": "finance_prices",
}
USAGE_KEY = (
    "project_id",
    "model",
    "batch",
    "service_tier",
    "user_id",
    "api_key_id",
)


# --- reading the raw files -------------------------------------------------------------------


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def validator(name: str) -> jsonschema.protocols.Validator:
    s = schema(name)
    cls = jsonschema.validators.validator_for(s)
    return cls(s, format_checker=cls.FORMAT_CHECKER)


def read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    text = read_bytes(path).decode("utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    return list(reader.fieldnames or []), list(reader)


def typed(row: dict[str, str], contract: dict) -> dict:
    """CSV strings as the contract types them: integers as int, empty as None."""
    out: dict = {}
    for key, value in row.items():
        types = contract["properties"].get(key, {}).get("type", "string")
        types = [types] if isinstance(types, str) else types
        if value == "":
            out[key] = None
        elif "integer" in types:
            out[key] = int(value)
        else:
            out[key] = value
    return out


def quarter_of(d: date) -> str:
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


PERIOD_FOLDER = r"\d{8}-\d{8}"


def export_runs(root: Path) -> list[dict]:
    """Every manifest under billing/azure at any depth; `month` is its YYYYMMDD-YYYYMMDD
    folder (Cost Management's layout has an export-time folder below it, older ones not)."""
    runs = []
    for manifest_path in sorted((root / "billing" / "azure").rglob("manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        (month,) = [p for p in manifest_path.parts if re.fullmatch(PERIOD_FOLDER, p)]
        runs.append({"path": manifest_path, "manifest": manifest, "month": month})
    return runs


def run_rows(run: dict) -> list[dict[str, str]]:
    rows = []
    for blob in run["manifest"]["blobs"]:
        rows.extend(read_csv(run["path"].parent / Path(blob["blobName"]).name)[1])
    return rows


def workload(row: dict[str, str]) -> str:
    """The classification rule of the shipped workload rules (tag, then resource group)."""
    tags = json.loads("{" + row["Tags"] + "}") if row["Tags"] else {}
    if tags.get("workload") in ("inference", "training"):
        return tags["workload"]
    for prefix, name in (("rg-inference-", "inference"), ("rg-training-", "training")):
        if (row["ResourceGroup"] or "").startswith(prefix):
            return name
    return "other"


def us_date(text: str) -> date:
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", text), text
    return datetime.strptime(text, "%m/%d/%Y").date()


def billing_totals(root: Path) -> tuple[dict, dict]:
    """Per (quarter, workload): sum of the newest run per (scope, month), and of all runs."""
    runs = export_runs(root)
    newest: dict[tuple[str, str], dict] = {}
    for run in runs:
        key = (run["manifest"]["exportConfig"]["resourceId"], run["month"])
        submitted = run["manifest"]["runInfo"]["submittedTime"]
        if key not in newest or submitted > newest[key]["manifest"]["runInfo"]["submittedTime"]:
            newest[key] = run
    effective: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    everything: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for run in runs:
        is_newest = newest[(run["manifest"]["exportConfig"]["resourceId"], run["month"])] is run
        for row in run_rows(run):
            key = (quarter_of(us_date(row["Date"])), workload(row))
            cost = Decimal(row["CostInBillingCurrency"])
            everything[key] += cost
            if is_newest:
                effective[key] += cost
    return effective, everything


def usage_pages(root: Path) -> list[tuple[Path, dict]]:
    out = []
    for path in sorted((root / "usage").rglob("*")):
        if not path.is_file():
            continue
        assert re.fullmatch(r"page-\d{4}\.(json|json\.gz|jsonl)", path.name), path
        text = read_bytes(path).decode("utf-8")
        if path.name.endswith(".jsonl"):
            out.extend((path, json.loads(line)) for line in text.splitlines() if line)
        else:
            out.append((path, json.loads(text)))
    return out


def finance_rows(root: Path, feed: str) -> list[dict[str, str]]:
    rows = []
    for path in sorted((root / "finance" / feed).glob("*.csv")):
        header, file_rows = read_csv(path)
        assert ",".join(header) == FINANCE_HEADERS[feed], path
        rows.extend(file_rows)
    return rows


def latest_revenue_basis(root: Path) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    rows = finance_rows(root, "revenue")
    latest: dict[str, dict[str, str]] = {}
    for row in rows:
        current = latest.get(row["entry_id"])
        if current is None or int(row["entry_version"]) > int(current["entry_version"]):
            latest[row["entry_id"]] = row
    basis_lines = {"chatgpt_consumer", "chatgpt_business", "api"}

    def per_quarter(selected):
        out: dict[str, Decimal] = defaultdict(Decimal)
        for row in selected:
            if row["product_line"] in basis_lines:
                out[quarter_of(date.fromisoformat(row["revenue_date"]))] += Decimal(row["amount"])
        return out

    return per_quarter(latest.values()), per_quarter(rows)


def effective_statements(root: Path) -> list[dict[str, str]]:
    rows = finance_rows(root, "settlements")
    superseded = {r["supersedes_statement_id"] for r in rows if r["supersedes_statement_id"]}
    return [r for r in rows if r["statement_id"] not in superseded]


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> GenerationSummary:
    # Two quarters across a year boundary: year files split, one month with a manual re-run.
    return generate_landing(tmp_path_factory.mktemp("landing"), start="2024-Q4", end="2025-Q1")


# --- API and scenario ------------------------------------------------------------------------


def test_scenario_table_is_the_public_figures():
    assert list(SCENARIO_QUARTERS) == [
        "2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1", "2025-Q2", "2025-Q3",
    ]  # fmt: skip
    q1 = SCENARIO_QUARTERS["2024-Q1"]
    assert q1.inference_spend_usd == Decimal("546800000.00")
    assert q1.revshare_paid_usd == Decimal("77300000.00")
    assert q1.implied_revenue_usd == Decimal("386500000.00")
    h1 = [SCENARIO_QUARTERS[q] for q in ("2025-Q1", "2025-Q2")]
    assert sum(t.inference_spend_usd for t in h1) == Decimal("5020000000.00")
    assert sum(t.revshare_paid_usd for t in h1) == Decimal("454700000.00")
    year_2024 = [t for label, t in SCENARIO_QUARTERS.items() if label.startswith("2024")]
    assert sum(t.inference_spend_usd for t in year_2024) == Decimal("3767100000.00")
    assert sum(t.revshare_paid_usd for t in year_2024) == Decimal("493800000.00")
    for t in SCENARIO_QUARTERS.values():
        assert t.implied_revenue_usd * RATE == t.revshare_paid_usd
        assert t.received_basis_usd * RATE == t.revshare_received_usd
        assert all(isinstance(v, Decimal) for v in vars(t).values())


def test_summary(landing):
    assert landing.quarters == ["2024-Q4", "2025-Q1"]
    assert landing.expected == {q: SCENARIO_QUARTERS[q] for q in landing.quarters}
    files = [p for p in landing.out_dir.rglob("*") if p.is_file()]
    assert landing.files == len(files)
    assert landing.bytes == sum(p.stat().st_size for p in files)
    assert landing.billing_runs == len(export_runs(landing.out_dir))
    for count in (
        landing.superseded_export_runs,
        landing.redelivered_usage_pages,
        landing.superseded_revenue_versions,
        landing.superseding_statements,
        landing.untagged_inference_lines,
        landing.revenue_refunds,
    ):
        assert count > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": "2023-Q4", "end": "2024-Q1"},
        {"start": "2025-Q3", "end": "2025-Q4"},
        {"start": "2024-Q2", "end": "2024-Q1"},
        {"start": "2024-1", "end": "2024-Q1"},
        {"start": "2024-Q1", "end": "2024-Q1", "scale": 0},
    ],
)
def test_rejects_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate_landing(tmp_path, **kwargs)
    assert not (tmp_path / "billing").exists()


# --- determinism -----------------------------------------------------------------------------


def test_same_inputs_give_identical_files(tmp_path):
    a = generate_landing(tmp_path / "a", start="2024-Q1", end="2024-Q1")
    b = generate_landing(tmp_path / "b", start="2024-Q1", end="2024-Q1")
    assert tree_digest(a.out_dir) == tree_digest(b.out_dir)


def test_regenerating_wipes_only_generated_folders(tmp_path):
    generate_landing(tmp_path, start="2024-Q1", end="2024-Q2")
    (tmp_path / "billing" / "stray.csv").write_text("x")
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("mine")
    summary = generate_landing(tmp_path, start="2024-Q1", end="2024-Q1")
    assert not (tmp_path / "billing" / "stray.csv").exists()
    assert not (tmp_path / "usage" / "openai" / "2024-04-01").exists()
    assert (tmp_path / "keep" / "notes.txt").read_text() == "mine"
    generated = [p for d in ("billing", "usage", "finance") for p in (tmp_path / d).rglob("*")]
    assert summary.files == sum(p.is_file() for p in generated)


def same_usage_volume(a: GenerationSummary, b: GenerationSummary) -> bool:
    """First-party tokens are allocated exactly; partner tokens come from its revenue, so only
    their value at sheet prices is fixed (to within rounding of whole tokens)."""
    priced = zip(a.azure_usage_priced_usd.values(), b.azure_usage_priced_usd.values(), strict=True)
    return a.usage_tokens["openai"] == b.usage_tokens["openai"] and all(
        abs(x - y) < 1 for x, y in priced
    )


def test_other_seed_changes_files_not_totals(tmp_path):
    a = generate_landing(tmp_path / "a", seed=7, start="2024-Q1", end="2024-Q1")
    b = generate_landing(tmp_path / "b", seed=8, start="2024-Q1", end="2024-Q1")
    assert tree_digest(a.out_dir) != tree_digest(b.out_dir)
    assert billing_totals(a.out_dir)[0] == billing_totals(b.out_dir)[0]
    assert latest_revenue_basis(a.out_dir)[0] == latest_revenue_basis(b.out_dir)[0]
    assert same_usage_volume(a, b)


def test_scale_multiplies_rows_not_totals(tmp_path):
    one = generate_landing(tmp_path / "one", scale=1.0, start="2024-Q1", end="2024-Q1")
    two = generate_landing(tmp_path / "two", scale=2.0, start="2024-Q1", end="2024-Q1")
    assert 1.8 <= two.billing_rows_effective / one.billing_rows_effective <= 2.2
    assert 1.8 <= two.billing_rows / one.billing_rows <= 2.2
    assert 1.6 <= two.usage_results / one.usage_results <= 2.4
    assert billing_totals(one.out_dir)[0] == billing_totals(two.out_dir)[0]
    assert latest_revenue_basis(one.out_dir)[0] == latest_revenue_basis(two.out_dir)[0]
    assert same_usage_volume(one, two)


# --- billing ---------------------------------------------------------------------------------


def test_newest_run_per_scope_and_month_reproduces_inference_spend(landing):
    effective, everything = billing_totals(landing.out_dir)
    for q in landing.quarters:
        target = SCENARIO_QUARTERS[q].inference_spend_usd
        assert effective[(q, "inference")] == target
        assert everything[(q, "inference")] > target  # adding runs up is wrong
        # Training and other are plausible shares, not part of the public figures.
        assert 0.4 <= effective[(q, "training")] / target <= 0.6
        assert 0.03 <= effective[(q, "other")] / target <= 0.07


def test_export_runs_are_month_to_date_restatements(landing):
    by_month: dict[str, list[dict]] = defaultdict(list)
    for run in export_runs(landing.out_dir):
        by_month[run["month"]].append(run["manifest"])
    assert sorted(by_month) == [
        "20241001-20241031", "20241101-20241130", "20241201-20241231",
        "20250101-20250131", "20250201-20250228", "20250301-20250331",
    ]  # fmt: skip
    manual = 0
    for month, manifests in by_month.items():
        first, last = (datetime.strptime(p, "%Y%m%d").date() for p in month.split("-"))
        assert len(manifests) >= 3
        ordered = sorted(manifests, key=lambda m: m["runInfo"]["submittedTime"])
        assert len({m["runInfo"]["submittedTime"] for m in manifests}) == len(manifests)
        newest = ordered[-1]
        assert newest["runInfo"]["endDate"] == f"{last:%Y-%m-%d}T00:00:00Z"
        assert newest["runInfo"]["submittedTime"] > f"{last:%Y-%m-%d}"
        # The month's last run comes over 72 hours after it ended (what makes it `final`).
        month_end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
        submitted = datetime.fromisoformat(newest["runInfo"]["submittedTime"])
        assert submitted - month_end > timedelta(hours=72)
        assert ordered[0]["runInfo"]["endDate"] < newest["runInfo"]["endDate"]
        for m in manifests:
            assert m["runInfo"]["startDate"] == f"{first:%Y-%m-%d}T00:00:00Z"
            assert m["exportConfig"]["type"] == "ActualCost"
            assert re.fullmatch(
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", m["runInfo"]["submittedTime"]
            )
        manual += sum(m["runInfo"]["executionType"] == "Manual" for m in manifests)
    assert manual == 1
    assert landing.superseded_export_runs == sum(len(m) - 1 for m in by_month.values())


def test_manifests_match_their_blobs_and_contract(landing):
    check_manifest = validator("azure_export_manifest")
    check_row = validator("azure_ea_cost_details")
    ea_contract = schema("azure_ea_cost_details")
    columns = list(ea_contract["properties"])
    azure = landing.out_dir / "billing" / "azure"  # mirrors the storage container
    total_rows, gzipped = 0, 0
    for run in export_runs(landing.out_dir):
        manifest, run_dir = run["manifest"], run["path"].parent
        check_manifest.validate(manifest)
        run_id, config = manifest["runInfo"]["runId"], manifest["exportConfig"]
        submitted = manifest["runInfo"]["submittedTime"]
        # Cost Management's layout: <root>/<export>/<period>/<YYYYMMDDHHMM>/<run-guid>/.
        root = manifest["deliveryConfig"]["rootFolderPath"]
        export_time = re.sub(r"\D", "", submitted)[:12]
        assert run_dir.relative_to(azure).parts == (
            root, config["exportName"], run["month"], export_time, run_id,
        )  # fmt: skip
        # resourceId is the export's id; its scope is what precedes /providers/...
        assert config["resourceId"] == (
            "/providers/Microsoft.Billing/billingAccounts/8611537"
            f"/providers/Microsoft.CostManagement/exports/{config['exportName']}"
        )
        assert manifest["manifestVersion"] == "2024-04-01"
        first, last = (datetime.strptime(p, "%Y%m%d").date() for p in run["month"].split("-"))
        on_disk = sorted(p.name for p in run_dir.iterdir() if p.name != "manifest.json")
        assert on_disk == sorted(Path(b["blobName"]).name for b in manifest["blobs"])
        for blob in manifest["blobs"]:
            path = azure / blob["blobName"]  # a container path
            assert path.parent == run_dir
            assert re.fullmatch(r"part_\d+_0001\.csv(\.gz)?", path.name)
            gzipped += path.name.endswith(".gz")
            assert blob["byteCount"] == path.stat().st_size
            header, rows = read_csv(path)
            assert header == columns
            assert blob["dataRowCount"] == len(rows)
            for row in rows:
                check_row.validate(typed(row, ea_contract))
                assert first <= us_date(row["Date"]) <= last
                assert us_date(row["BillingPeriodStartDate"]) == first
                assert us_date(row["BillingPeriodEndDate"]) == last
                assert row["ResourceId"].startswith(
                    f"/subscriptions/{row['SubscriptionId']}/resourceGroups/{row['ResourceGroup']}/"
                )
                assert row["BillingCurrencyCode"] == "USD" and row["ChargeType"] == "Usage"
                assert re.fullmatch(r"-?\d+\.\d{2}", row["CostInBillingCurrency"])
        assert manifest["dataRowCount"] == sum(b["dataRowCount"] for b in manifest["blobs"])
        assert manifest["blobCount"] == len(manifest["blobs"])
        assert manifest["byteCount"] == sum(b["byteCount"] for b in manifest["blobs"])
        total_rows += manifest["dataRowCount"]
    assert gzipped > 0
    assert total_rows == landing.billing_rows


@pytest.fixture(scope="module")
def older_shapes(tmp_path_factory) -> dict[str, GenerationSummary]:
    """One quarter in the legacy layout, and in the real layout with preview manifests."""
    kwargs = {"start": "2024-Q1", "end": "2024-Q1", "scale": 0.2}
    return {
        "legacy": generate_landing(
            tmp_path_factory.mktemp("legacy"), billing_layout="legacy", **kwargs
        ),
        "preview": generate_landing(
            tmp_path_factory.mktemp("preview"), billing_manifest="2023-07-01-preview", **kwargs
        ),
        "default": generate_landing(tmp_path_factory.mktemp("default"), **kwargs),
    }


def test_legacy_layout_is_a_level_less_with_relative_blob_names(older_shapes):
    legacy = older_shapes["legacy"]
    azure = legacy.out_dir / "billing" / "azure"
    runs = export_runs(legacy.out_dir)
    assert len(runs) == legacy.billing_runs == 9
    for run in runs:
        manifest, run_dir = run["manifest"], run["path"].parent
        run_id = manifest["runInfo"]["runId"]
        assert run_dir.relative_to(azure).parts == ("ea-actualcost-daily", run["month"], run_id)
        assert manifest["exportConfig"]["resourceId"] == (
            "/providers/Microsoft.Billing/billingAccounts/8611537"
        )
        for blob in manifest["blobs"]:
            assert re.fullmatch(rf"part_\d+_{run_id[:8]}\.csv(\.gz)?", blob["blobName"])
            assert (run_dir / blob["blobName"]).stat().st_size == blob["byteCount"]
    # The same charges, wherever they are laid out.
    assert billing_totals(legacy.out_dir) == billing_totals(older_shapes["default"].out_dir)


def test_preview_manifests_carry_byte_counts_only(older_shapes):
    preview = older_shapes["preview"]
    check_manifest = validator("azure_export_manifest")
    azure = preview.out_dir / "billing" / "azure"
    runs = export_runs(preview.out_dir)
    assert len(runs) == 9
    for run in runs:
        manifest = run["manifest"]
        check_manifest.validate(manifest)
        assert sorted(manifest) == ["blobs", "deliveryConfig", "exportConfig", "runInfo"]
        for blob in manifest["blobs"]:
            assert sorted(blob) == ["blobName", "byteCount"]
            assert (azure / blob["blobName"]).stat().st_size == blob["byteCount"]
    assert billing_totals(preview.out_dir) == billing_totals(older_shapes["default"].out_dir)


def test_manifest_counts_are_required_only_of_the_2024_04_01_shape(older_shapes):
    """Blob names alone are a valid manifest (FinOps hubs' hand-written template: only the
    blobs' presence can be verified); 2024-04-01 manifests must carry their row counts."""
    (run, *_) = export_runs(older_shapes["preview"].out_dir)
    doc = run["manifest"]
    doc["blobs"] = [{"blobName": b["blobName"]} for b in doc["blobs"]]
    validator("azure_export_manifest").validate(doc)
    with pytest.raises(jsonschema.ValidationError, match="'runId' is a required property"):
        validator("azure_export_manifest").validate(
            {**doc, "runInfo": {"startDate": "2024-01-01T00:00:00"}}
        )
    rows_only = {**doc, "blobs": [{"blobName": "x.csv", "dataRowCount": 3}]}
    validator("azure_export_manifest").validate(rows_only)
    with pytest.raises(jsonschema.ValidationError, match="dataRowCount"):
        validator("azure_export_manifest").validate({**rows_only, "manifestVersion": "2024-04-01"})


def test_some_inference_lines_are_recognisable_only_by_resource_group(landing):
    runs = export_runs(landing.out_dir)
    rows = [row for run in runs for row in run_rows(run)]
    untagged = [r for r in rows if not r["Tags"] and r["ResourceGroup"].startswith("rg-inference-")]
    assert untagged
    assert any(not r["Tags"] and r["ResourceGroup"].startswith("rg-training-") for r in rows)
    assert any(workload(r) == "other" and r["Tags"] for r in rows)


# --- usage -----------------------------------------------------------------------------------


def test_usage_pages_validate_and_redeliveries_dedupe(landing):
    check = validator("usage_page")
    seen: dict[tuple, dict] = {}
    written = 0
    suffixes = Counter()
    for path, page in usage_pages(landing.out_dir):
        check.validate(page)
        channel = path.parts[-3]
        assert channel in ("openai", "azure_openai")
        suffixes[path.name.split(".", 1)[1]] += 1
        for bucket in page["data"]:
            start = datetime.fromtimestamp(bucket["start_time"], UTC)
            assert (start.hour, start.minute, start.second) == (0, 0, 0)
            assert bucket["end_time"] - bucket["start_time"] == 86_400
            folder_day = date.fromisoformat(path.parts[-2])
            assert start.date() in (folder_day, folder_day - timedelta(days=1))
            for result in bucket["results"]:
                written += 1
                assert result["input_cached_tokens"] <= result["input_tokens"]
                key = (channel, bucket["start_time"], bucket["end_time"]) + tuple(
                    result[k] for k in USAGE_KEY
                )
                if key in seen:
                    assert seen[key] == result  # a redelivery is an identical copy
                seen[key] = result
    assert set(suffixes) == {"json", "json.gz", "jsonl"}
    assert written == landing.usage_results_written
    assert len(seen) == landing.usage_results < written


def test_azure_usage_priced_with_price_sheet_matches_reported_basis(landing):
    prices = finance_rows(landing.out_dir, "prices")

    def price(channel: str, model: str, token_type: str, day: date) -> Decimal:
        hits = [
            Decimal(p["unit_price"]) / int(p["unit_tokens"])
            for p in prices
            if (p["channel"], p["model"], p["token_type"]) == (channel, model, token_type)
            and date.fromisoformat(p["effective_from"]) <= day
            and (not p["effective_to"] or day < date.fromisoformat(p["effective_to"]))
        ]
        assert len(hits) == 1, (channel, model, token_type, day)
        return hits[0]

    seen, priced = set(), defaultdict(Decimal)
    for path, page in usage_pages(landing.out_dir):
        channel = path.parts[-3]
        for bucket in page["data"]:
            day = datetime.fromtimestamp(bucket["start_time"], UTC).date()
            for r in bucket["results"]:
                key = (channel, bucket["start_time"]) + tuple(r[k] for k in USAGE_KEY)
                if key in seen:
                    continue
                seen.add(key)
                unit = {
                    t: price(channel, r["model"], t, day)
                    for t in ("input", "cached_input", "output")
                }
                if channel == "azure_openai":
                    priced[quarter_of(day)] += (
                        (r["input_tokens"] - r["input_cached_tokens"]) * unit["input"]
                        + r["input_cached_tokens"] * unit["cached_input"]
                        + r["output_tokens"] * unit["output"]
                    )
    reported = {
        quarter_of(date.fromisoformat(s["period_start"])): Decimal(s["reported_basis_amount"])
        for s in effective_statements(landing.out_dir)
        if s["direction"] == "receivable"
    }
    for q in landing.quarters:
        assert abs(priced[q] - reported[q]) < Decimal("1.00")


# --- finance ---------------------------------------------------------------------------------


def test_latest_revenue_versions_are_the_payable_basis(landing):
    latest, all_versions = latest_revenue_basis(landing.out_dir)
    for q in landing.quarters:
        assert latest[q] * RATE == SCENARIO_QUARTERS[q].revshare_paid_usd
        assert all_versions[q] > latest[q]  # adding up every version is wrong
    rows = finance_rows(landing.out_dir, "revenue")
    versions = Counter(int(r["entry_version"]) for r in rows)
    assert versions[2] > 0 and versions[3] > 0
    assert landing.superseded_revenue_versions == versions[2] + versions[3]
    assert any(Decimal(r["amount"]) < 0 for r in rows)
    assert {r["product_line"] for r in rows} == {
        "chatgpt_consumer", "chatgpt_business", "api", "licensing_other",
    }  # fmt: skip
    assert {r["currency"] for r in rows} == {"USD"}
    ids = Counter((r["entry_id"], r["entry_version"]) for r in rows)
    assert max(ids.values()) == 1
    years = sorted(p.name for p in (landing.out_dir / "finance" / "revenue").iterdir())
    assert years == ["revenue_2024.csv", "revenue_2025.csv"]


def test_effective_statements_settle_the_scenario(landing):
    rows = finance_rows(landing.out_dir, "settlements")
    effective = effective_statements(landing.out_dir)
    paid = {
        quarter_of(date.fromisoformat(s["period_start"])): Decimal(s["amount"])
        for s in effective
        if s["direction"] == "payable"
    }
    received = {
        quarter_of(date.fromisoformat(s["period_start"])): Decimal(s["amount"])
        for s in effective
        if s["direction"] == "receivable"
    }
    assert len(effective) == 2 * len(landing.quarters)
    for q in landing.quarters:
        assert paid[q] == SCENARIO_QUARTERS[q].revshare_paid_usd
        assert received[q] == SCENARIO_QUARTERS[q].revshare_received_usd
    for s in effective:
        assert Decimal(s["reported_basis_amount"]) * Decimal(s["rate"]) == Decimal(s["amount"])
        start, end = date.fromisoformat(s["period_start"]), date.fromisoformat(s["period_end"])
        assert quarter_of(start) == quarter_of(end - timedelta(days=1)) and end.day == 1
        expected = {
            "payable": ("OAI-MSFT-REVSHARE", "Microsoft"),
            "receivable": ("MSFT-OAI-RESALE", "Microsoft"),
        }
        assert (s["agreement_id"], s["counterparty"]) == expected[s["direction"]]
    by_id = {s["statement_id"]: s for s in rows}
    corrections = [s for s in rows if s["supersedes_statement_id"]]
    assert {s["direction"] for s in corrections} == {"payable", "receivable"}
    assert len(corrections) == landing.superseding_statements
    for c in corrections:
        original = by_id[c["supersedes_statement_id"]]
        assert original["amount"] != c["amount"]
        assert original["period_start"] == c["period_start"]
        assert original["statement_date"] < c["statement_date"]


def test_every_finance_row_validates_against_its_contract(landing):
    for feed, schema_name in FINANCE_SCHEMAS.items():
        contract = schema(schema_name)
        check = validator(schema_name)
        rows = finance_rows(landing.out_dir, feed)
        assert rows, feed
        for row in rows:
            check.validate(typed(row, contract))


def test_contract_terms(landing):
    terms = {r["agreement_id"]: r for r in finance_rows(landing.out_dir, "contracts")}
    pay, rcv = terms["OAI-MSFT-REVSHARE"], terms["MSFT-OAI-RESALE"]
    assert (pay["direction"], pay["basis"], pay["rate"]) == (
        "payable", "revenue:chatgpt_consumer|chatgpt_business|api", "0.20",
    )  # fmt: skip
    assert (pay["effective_to"], pay["cap_currency"]) == ("2031-01-01", "USD")
    assert Decimal(pay["cap_amount"]) > 0
    assert (rcv["direction"], rcv["basis"], rcv["rate"]) == ("receivable", "reported", "0.20")
    assert (rcv["effective_to"], rcv["cap_amount"]) == ("2026-04-27", "")


def test_fx_has_every_day_for_every_currency(landing):
    rows = finance_rows(landing.out_dir, "fx")
    days = defaultdict(set)
    for r in rows:
        days[r["currency"]].add(date.fromisoformat(r["rate_date"]))
        if r["currency"] == "USD":
            assert Decimal(r["usd_per_unit"]) == 1
    first, last = date(2024, 10, 1), date(2025, 3, 31) + timedelta(days=60)
    needed = {first + timedelta(days=i) for i in range((last - first).days + 1)}
    for currency in ("USD", "EUR", "GBP"):
        assert needed <= days[currency], currency
    assert 1.0 < min(Decimal(r["usd_per_unit"]) for r in rows if r["currency"] == "EUR") < 1.2


def test_price_sheet_has_a_mid_range_price_change(landing):
    rows = finance_rows(landing.out_dir, "prices")
    per_key = Counter((r["channel"], r["model"], r["token_type"]) for r in rows)
    assert max(per_key.values()) >= 2
    assert {r["token_type"] for r in rows} == {"input", "cached_input", "output"}
    assert {r["channel"] for r in rows} == {"openai", "azure_openai"}


# --- allocation ------------------------------------------------------------------------------


def test_largest_remainder_allocation_is_exact():
    assert allocate_int(10, [1, 1, 1]) == [4, 3, 3]
    assert allocate_int(-10, [1, 1, 1]) == [-4, -3, -3]
    parts = allocate_cents(Decimal("546800000.00"), [7, 13, 1, 999, 3])
    assert sum(parts) == Decimal("546800000.00")
    assert all(p == p.quantize(Decimal("0.01")) for p in parts)
    with pytest.raises(ValueError):
        allocate_cents(Decimal("1.005"), [1])
    with pytest.raises(ValueError):
        allocate_int(1, [0, 0])


# --- input faults: conflicting pulls, statement chains, contract changes ----------------------

FAULTS = {"usage_conflicts": True, "statement_chains": True, "contract_changes": True}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory) -> tuple[GenerationSummary, GenerationSummary]:
    """The same three quarters without and with every input fault."""
    kwargs = {"start": "2024-Q3", "end": "2025-Q1", "scale": 0.3}
    plain = generate_landing(tmp_path_factory.mktemp("plain"), **kwargs)
    return plain, generate_landing(tmp_path_factory.mktemp("faulty"), **kwargs, **FAULTS)


def test_input_faults_change_only_their_own_files(faulty):
    plain, with_faults = faulty

    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.*")}

    a, b = files(plain.out_dir), files(with_faults.out_dir)
    changed = sorted(k for k in a if a[k] != b.get(k))
    added = sorted(set(b) - set(a))
    assert changed == [
        "finance/contracts/contracts.csv",
        "finance/settlements/settlements_payable_2024.csv",
        "finance/settlements/settlements_receivable_2025.csv",
    ]
    assert added and all(
        re.fullmatch(r"usage/\w+/[\d-]+/page-0000-partial\.json", k) for k in added
    )
    assert len(added) == with_faults.partial_usage_pulls
    assert with_faults.usage_results == plain.usage_results
    assert with_faults.superseding_statements == plain.superseding_statements + 1


def test_partial_pulls_are_older_conflicting_copies_of_a_complete_page(faulty):
    _, sample = faulty
    conflicting = identical = 0
    for partial_path in sorted(sample.out_dir.glob("usage/*/*/page-0000-partial.json")):
        partial = json.loads(partial_path.read_text())
        complete = {}  # natural key -> result, over the folder's complete pages
        for path in sorted(partial_path.parent.glob("page-*")):
            if path == partial_path:
                continue
            text = read_bytes(path).decode()
            pages = [json.loads(x) for x in text.splitlines() if x] if ".jsonl" in path.name else [json.loads(text)]  # fmt: skip
            for page in pages:
                # The complete pull is the newer file (and sorts after by name).
                assert path.stat().st_mtime > partial_path.stat().st_mtime
                for bucket in page["data"]:
                    for r in bucket["results"]:
                        key = (bucket["start_time"], bucket["end_time"], *[r[k] for k in USAGE_KEY])
                        complete[key] = r
        bucket = partial["data"][0]
        noon = datetime.fromtimestamp(partial_path.stat().st_mtime, UTC)
        assert noon == datetime.fromtimestamp(bucket["start_time"], UTC) + timedelta(hours=12)
        for r in bucket["results"]:
            full = complete[(bucket["start_time"], bucket["end_time"], *[r[k] for k in USAGE_KEY])]
            for m in ("input_tokens", "output_tokens", "input_cached_tokens", "num_model_requests"):
                assert r[m] == full[m] // 2
            assert r["input_cached_tokens"] <= r["input_tokens"]
            conflicting += r != full
            identical += r == full
    assert conflicting == sample.conflicting_usage_results > 0
    assert identical == sample.partial_pull_identical_results


def test_statement_chain_of_two_and_a_mid_quarter_rate_change(faulty):
    _, sample = faulty
    terms = finance_rows(sample.out_dir, "contracts")
    receivable = [t for t in terms if t["direction"] == "receivable"]
    # Two non-overlapping receivable terms: the rate changes on 2024-11-15, mid-2024-Q4.
    assert [(t["rate"], t["effective_from"], t["effective_to"]) for t in receivable] == [
        ("0.20", "2023-01-01", "2024-11-15"),
        ("0.15", "2024-11-15", "2026-04-27"),
    ]
    assert [t["rate"] for t in terms if t["direction"] == "payable"] == ["0.20"]
    assert tuple(tuple(str(v) for v in t.values()) for t in terms) == tuple(
        tuple(str(v) for v in t) for t in sample.contract_terms
    )

    rows = finance_rows(sample.out_dir, "settlements")
    by_id = {r["statement_id"]: r for r in rows}
    chains = []
    for r in rows:
        chain = [r["statement_id"]]
        while by_id[chain[-1]]["supersedes_statement_id"]:
            chain.append(by_id[chain[-1]]["supersedes_statement_id"])
        chains.append(chain)
    assert max(chains, key=len) == [
        "MSFT-RS-PAY-2024Q3-R2", "MSFT-RS-PAY-2024Q3-R1", "MSFT-RS-PAY-2024Q3",
    ]  # fmt: skip
    assert sum(len(c) == 3 for c in chains) == sample.chained_supersessions == 1
    assert len({by_id[s]["amount"] for s in max(chains, key=len)}) == 3

    def rate_on(day: str) -> Decimal:
        (hit,) = [t["rate"] for t in receivable if t["effective_from"] <= day < t["effective_to"]]
        return Decimal(hit)

    received = {}
    for s in effective_statements(sample.out_dir):
        if s["direction"] == "receivable":
            # A reported basis is charged at the rate in effect at the period start.
            assert Decimal(s["rate"]) == rate_on(s["period_start"])
            assert Decimal(s["reported_basis_amount"]) * Decimal(s["rate"]) == Decimal(s["amount"])
            received[quarter_of(date.fromisoformat(s["period_start"]))] = Decimal(s["amount"])
        else:
            q = quarter_of(date.fromisoformat(s["period_start"]))
            assert Decimal(s["amount"]) == SCENARIO_QUARTERS[q].revshare_paid_usd
    assert received == sample.revshare_received_usd
    unchanged = {q: SCENARIO_QUARTERS[q].revshare_received_usd for q in ("2024-Q3", "2024-Q4")}
    assert {q: received[q] for q in unchanged} == unchanged
    basis = SCENARIO_QUARTERS["2025-Q1"].received_basis_usd
    # 2025-Q1 at 15%, its basis rounded down to whole 20 cents so the share is whole cents.
    assert basis - Decimal("0.20") < sample.received_basis_usd["2025-Q1"] <= basis
    assert received["2025-Q1"] == sample.received_basis_usd["2025-Q1"] * Decimal("0.15")
