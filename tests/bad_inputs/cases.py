"""The bad-input corpus, declared: each case writes one mutated file into a landing folder and
states what must become of it.

Outcomes:
- `Quarantined(rows)`: every row of the file is in audit.quarantine with its (line, field,
  reason fragment); the run goes on. Line is None where the feed has no line numbers yet
  (usage pages, finance CSV): the file and field still name the row's origin.
- `Counted(status)`: every row of the file is accounted for under that status (deduplicated,
  superseded, loaded as a restatement of the same figures).
- `Rejected(fragment)`: an export run that disagrees with its manifest: its rows quarantined
  with the reason, the previous good run of the month stays.
- `Empty()`: no rows; the file is still recorded with its checksum.
- `Fails(fragments)`: the ingest step stops with an InputError naming the file and these.

Quarantine-type cases all go into one landing next to good data whose figures they must not
move; `Fails` cases each get a landing of their own (they stop the run).
"""

from __future__ import annotations

import copy
import gzip
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from inference_ledger.ingest import exports
from tests.reliability_support import (
    blob_rows,
    newest_run,
    read_blob,
    to_csv,
    write_export_run,
)

JAN, FEB, MAR = "20240101-20240131", "20240201-20240229", "20240301-20240331"


@dataclass(frozen=True)
class Quarantined:
    rows: tuple[tuple[int | None, str | None, str], ...]


@dataclass(frozen=True)
class Counted:
    status: str  # loaded | deduplicated | superseded, or several joined by "|"


@dataclass(frozen=True)
class Rejected:
    fragment: str


@dataclass(frozen=True)
class Empty:
    pass


@dataclass(frozen=True)
class Fails:
    fragments: tuple[str, ...]
    # What the message names instead of the file, where it names the feed only (a gap).
    names_feed: str | None = None


Outcome = Quarantined | Counted | Rejected | Empty | Fails


@dataclass
class Base:
    """Good files to mutate, taken from generated landings (EA in the landing itself)."""

    landing: Path
    mca: Path
    focus: Path
    ea_header: list[str] = field(default_factory=list)
    ea_rows: list[dict] = field(default_factory=list)
    mca_header: list[str] = field(default_factory=list)
    mca_rows: list[dict] = field(default_factory=list)
    focus_header: list[str] = field(default_factory=list)
    focus_rows: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self.ea_header, self.ea_rows = blob_rows(newest_run(self.landing, JAN))
        self.mca_header, self.mca_rows = blob_rows(newest_run(self.mca, JAN))
        # Any depth: Azure's FOCUS export sits in Cost Management's layout under billing/focus.
        blob = sorted(
            p for p in (self.focus / "billing" / "focus").rglob("*.csv*") if JAN in p.parts
        )[0]
        import csv
        import io

        reader = csv.DictReader(io.StringIO(read_blob(blob)))
        self.focus_header, self.focus_rows = list(reader.fieldnames), list(reader)

    def inference(self, rows: list[dict], tags: str) -> dict:
        return copy.deepcopy(next(r for r in rows if '"workload": "inference"' in r[tags]))

    @property
    def revenue(self) -> Path:
        return self.landing / "finance" / "revenue" / "revenue_2024.csv"

    @property
    def usage_page(self) -> Path:
        return self.landing / "usage" / "openai" / "2024-01-05" / "page-0001.json"


@dataclass(frozen=True)
class Case:
    name: str
    feed: str
    what: str
    write: Callable[[Base, Path], Path]  # (base, landing) -> the file the outcome is about
    expect: Outcome


# ---------------------------------------------------------------- writers


def _scope(name: str) -> str:
    return f"/providers/Microsoft.Billing/billingAccounts/bad-{name}"


def ea(name: str, **changes: str) -> Callable[[Base, Path], Path]:
    """One EA line (an inference charge of January) changed, in an export of its own."""

    def write(base: Base, root: Path) -> Path:
        row = base.inference(base.ea_rows, "Tags")
        row.update(changes)
        body = to_csv(base.ea_header, [row])
        manifest = newest_run(base.landing, JAN)
        return write_export_run(root, manifest, body, export_name=f"bad-{name}", scope=_scope(name))

    return write


def mca(name: str, **changes: str) -> Callable[[Base, Path], Path]:
    def write(base: Base, root: Path) -> Path:
        row = base.inference(base.mca_rows, "tags")
        row.update(changes)
        manifest = newest_run(base.mca, JAN)
        return write_export_run(
            root,
            manifest,
            to_csv(base.mca_header, [row]),
            export_name=f"bad-{name}",
            scope=_scope(name),
        )

    return write


def _focus_file(root: Path, name: str, data: bytes, suffix: str = ".csv") -> Path:
    folder = root / "billing" / "focus" / f"bad-{name}" / JAN / "run-1"
    folder.mkdir(parents=True)
    path = folder / f"part_1{suffix}"
    path.write_bytes(data)
    return path


def focus(name: str, **changes: str) -> Callable[[Base, Path], Path]:
    def write(base: Base, root: Path) -> Path:
        row = base.inference(base.focus_rows, "Tags")
        row.update(changes)
        return _focus_file(root, name, to_csv(base.focus_header, [row]).encode())

    return write


def focus_parquet_nan(base: Base, root: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = base.inference(base.focus_rows, "Tags")
    cols = {k: [v] for k, v in row.items()}
    cols["BilledCost"] = [float("nan")]
    cols["EffectiveCost"] = [float("nan")]
    folder = root / "billing" / "focus" / "bad-parquet-nan" / JAN / "run-1"
    folder.mkdir(parents=True)
    path = folder / "part_1.parquet"
    pq.write_table(pa.table(cols), path)
    return path


def restate(period: str, transform: Callable[[list[str], list[dict]], tuple[list, list]], *,
            export_name: str | None = None, bom: bool = False, gz: bool = False):  # fmt: skip
    """The month's newest run delivered again, one hour later, with the same charges written
    differently: it becomes the month's current run and must give the same figures."""

    def write(base: Base, root: Path) -> Path:
        manifest = newest_run(root, period)
        header, rows = transform(*blob_rows(manifest))
        text = ("\ufeff" if bom else "") + to_csv(header, rows)
        data = gzip.compress(text.encode()) if gz else text.encode()
        doc = json.loads(manifest.read_text())
        later = datetime.fromisoformat(doc["runInfo"]["submittedTime"].replace("Z", "+00:00"))
        return write_export_run(
            root,
            manifest,
            data,
            export_name=export_name,
            submitted=(later + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            declared_rows=len(rows),
            blob_name="part_1.csv.gz" if gz else "part_1.csv",
        )

    return write


def _reorder_and_extra(header, rows):
    new = [*reversed(header), "x_NewColumn2025"]
    return new, [{**r, "x_NewColumn2025": "drift"} for r in rows]


def _drop_optional(header, rows):
    gone = {"PublisherType", "PricingModel", "ProductName"}
    return [h for h in header if h not in gone], [
        {k: v for k, v in r.items() if k not in gone} for r in rows
    ]


def newer_bad_run(*, extra_declared: int = 0, missing_blob: bool = False):
    """A newer run of January whose manifest disagrees with its files; its one line is dearer,
    so accepting it would move the figures."""

    def write(base: Base, root: Path) -> Path:
        manifest = newest_run(root, JAN)
        header, rows = blob_rows(manifest)
        rows[0]["CostInBillingCurrency"] = "99999999.99"
        doc = json.loads(manifest.read_text())
        later = datetime.fromisoformat(doc["runInfo"]["submittedTime"].replace("Z", "+00:00"))
        path = write_export_run(
            root,
            manifest,
            to_csv(header, rows),
            submitted=(later + timedelta(hours=2 + missing_blob)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            declared_rows=len(rows) + extra_declared,
        )
        if missing_blob:
            m = path.parent / "manifest.json"
            doc = json.loads(m.read_text())
            doc["blobs"].append({"blobName": "part_2.csv", "byteCount": 10, "dataRowCount": 1})
            m.write_text(json.dumps(doc))
        return path

    return write


def same_scope_copy(base: Base, root: Path) -> Path:
    """March's newest original run delivered again, as is, by a second export of the same
    billing scope (same submitted time): one month, one current run."""
    manifest = newest_run(base.landing, MAR)
    doc = json.loads(manifest.read_text())
    blob = exports.blob_path(manifest.parent, doc["blobs"][0]["blobName"])
    return write_export_run(
        root,
        manifest,
        blob.read_bytes(),
        export_name="ea-actualcost-daily-copy",
        declared_rows=doc["blobs"][0]["dataRowCount"],
        blob_name=blob.name,
    )


def _page(base: Base) -> dict:
    return json.loads(base.usage_page.read_text())


def usage(name: str, mutate: Callable[[dict], object], channel: str = "openai"):
    """One usage page (January 5th's, one result) mutated; written as text if mutate returns a
    string, else as the JSON of the page."""

    def write(base: Base, root: Path) -> Path:
        page = _page(base)
        page["data"][0]["results"] = page["data"][0]["results"][:1]
        out = mutate(page)
        text = out if isinstance(out, str) else json.dumps(page)
        folder = root / "usage" / channel / "2024-01-05"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"bad-{name}.json"
        path.write_text(text)
        return path

    return write


def _set(path: str, value):
    def mutate(page: dict):
        target = page
        *parents, last = path.split(".")
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return mutate


_DELETE = object()


def usage_copy(base: Base, root: Path) -> Path:
    path = root / "usage" / "openai" / "2024-01-05" / "page-0001 (redelivered).json"
    shutil.copy2(root / base.usage_page.relative_to(base.landing), path)
    return path


def usage_jsonl_one_bad_line(base: Base, root: Path) -> Path:
    path = root / "usage" / "openai" / "2024-01-06" / "bad-jsonl.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"object": "page", "data": [\n')
    return path


def usage_empty(base: Base, root: Path) -> Path:
    path = root / "usage" / "openai" / "2024-01-05" / "bad-empty.json"
    path.write_bytes(b"")
    return path


REVENUE_HEADER = "entry_id,entry_version,revenue_date,product_line,amount,currency,description"


def revenue(name: str, line: str, header: str = REVENUE_HEADER):
    def write(base: Base, root: Path) -> Path:
        path = root / "finance" / "revenue" / f"z_bad_{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{header}\n{line}\n" if line else f"{header}\n")
        return path

    return write


def revenue_copy(name: str, *, bom: bool = False, extra_column: bool = False,
                 encoding: str = "utf-8", accent: bool = False):  # fmt: skip
    """The revenue ledger delivered again under another name (same entries, same versions)."""

    def write(base: Base, root: Path) -> Path:
        lines = base.revenue.read_text().splitlines()
        if extra_column:
            lines = [lines[0] + ",cost_center"] + [line + ",CC-1" for line in lines[1:]]
        if accent:
            lines[1] = lines[1].rsplit(",", 1)[0] + ',"Café API usage"'
        path = root / "finance" / "revenue" / f"revenue_2024_{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((("\ufeff" if bom else "") + "\n".join(lines) + "\n").encode(encoding))
        return path

    return write


def existing_revenue_conflict(base: Base, root: Path) -> Path:
    """An entry's only version delivered again with another amount."""
    rows = [r.split(",") for r in base.revenue.read_text().splitlines()[1:]]
    ids = [r[0] for r in rows]
    entry, version, day, line = next(r for r in rows if ids.count(r[0]) == 1)[:4]
    path = root / "finance" / "revenue" / "z_bad_conflict.csv"
    path.write_text(f"{REVENUE_HEADER}\n{entry},{version},{day},{line},1.00,USD,conflicting\n")
    return path


SETTLEMENT_HEADER = (
    "statement_id,supersedes_statement_id,agreement_id,direction,counterparty,period_start,"
    "period_end,reported_basis_amount,rate,amount,currency,statement_date,payment_date,reference"
)


def settlement(name: str, line: str):
    def write(base: Base, root: Path) -> Path:
        path = root / "finance" / "settlements" / f"z_bad_{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{SETTLEMENT_HEADER}\n{line}\n")
        return path

    return write


def finance_text(feed: str, name: str, text: str | bytes):
    def write(base: Base, root: Path) -> Path:
        path = root / "finance" / feed / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    return write


def truncated_blob(base: Base, root: Path) -> Path:
    """January's newest run with its gzip blob cut short (the manifest still says all rows)."""
    manifest = newest_run(base.landing, JAN)
    run = root / manifest.parent.relative_to(base.landing)
    shutil.copytree(manifest.parent, run)
    doc = json.loads((run / "manifest.json").read_text())
    name = doc["blobs"][0]["blobName"]  # a container path, resolved as discovery does
    blob = exports.blob_path(run, name)
    data = blob.read_bytes()
    if not blob.name.endswith(".gz"):  # the generator writes some blobs plain
        blob.unlink()
        blob = blob.with_name(blob.name + ".gz")
        data = gzip.compress(data)
        doc["blobs"][0]["blobName"] = name + ".gz"
        (run / "manifest.json").write_text(json.dumps(doc))
    blob.write_bytes(data[: len(data) // 2])
    return blob


def utf16_blob(base: Base, root: Path) -> Path:
    manifest = newest_run(base.landing, JAN)
    return write_export_run(
        root,
        manifest,
        to_csv(base.ea_header, base.ea_rows[:1]).encode("utf-16"),
        declared_rows=1,
    )


def ea_without(column: str):
    def write(base: Base, root: Path) -> Path:
        header = [h for h in base.ea_header if h != column]
        rows = [{k: v for k, v in r.items() if k != column} for r in base.ea_rows[:1]]
        return write_export_run(root, newest_run(base.landing, JAN), to_csv(header, rows))

    return write


def focus_without_provider(base: Base, root: Path) -> Path:
    header = [h for h in base.focus_header if h not in ("ServiceProviderName", "ProviderName")]
    rows = [{k: v for k, v in r.items() if k in header} for r in base.focus_rows[:1]]
    return _focus_file(root, "no-provider", to_csv(header, rows).encode())


def bad_manifest(base: Base, root: Path) -> Path:
    manifest = newest_run(base.landing, JAN)
    run = root / manifest.parent.relative_to(base.landing)
    shutil.copytree(manifest.parent, run)
    (run / "manifest.json").write_text('{"runInfo": ')
    return run / "manifest.json"


def bad_period_start(base: Base, root: Path) -> Path:
    """January's newest run with runInfo.startDate written as a month ('2024-01'): the
    month comes from the manifest, not from folder names, so the manifest is at fault."""
    manifest = newest_run(base.landing, JAN)
    run = root / manifest.parent.relative_to(base.landing)
    shutil.copytree(manifest.parent, run)
    doc = json.loads((run / "manifest.json").read_text())
    doc["runInfo"]["startDate"] = "2024-01"
    doc["runInfo"]["submittedTime"] = "2024-02-10T06:00:00Z"
    doc["runInfo"]["runId"] = "5d1c0a8e-0000-4000-8000-00000000bad1"
    (run / "manifest.json").write_text(json.dumps(doc))
    return run / "manifest.json"


def usage_truncated_gzip(base: Base, root: Path) -> Path:
    path = root / "usage" / "openai" / "2024-01-05" / "page-0002.json.gz"
    path.parent.mkdir(parents=True)
    data = gzip.compress(base.usage_page.read_bytes())
    path.write_bytes(data[: len(data) // 2])
    return path


def fx_truncated_gzip(base: Base, root: Path) -> Path:
    data = gzip.compress(b"rate_date,currency,usd_per_unit\n" + b"2024-01-01,EUR,1.10\n" * 200)
    return finance_text("fx", "fx_eur.csv.gz", data[: len(data) // 2])(base, root)


CONTRACT_HEADER = (
    "agreement_id,direction,counterparty,basis,rate,effective_from,effective_to,cap_amount,"
    "cap_currency,tolerance_abs,tolerance_pct,payment_terms_days"
)

# ---------------------------------------------------------------- the corpus

INF = '"workload": "inference"'
Q = Quarantined

CASES: list[Case] = [
    # Azure EA cost details (one line each, in an export of its own)
    Case("ea_thousands_separator", "billing.azure", "cost written 1,234.50",
         ea("thousands", CostInBillingCurrency="1,234.50"),
         Q(((2, "BilledCost", "is not a decimal number"),))),
    Case("ea_nan_cost", "billing.azure", "cost NaN", ea("nan", CostInBillingCurrency="NaN"),
         Q(((2, "BilledCost", "is not a decimal number"),))),
    Case("ea_1e400_cost", "billing.azure", "cost 1e400 (overflows any decimal)",
         ea("1e400", CostInBillingCurrency="1e400"),
         Q(((2, "BilledCost", "is not a decimal number"),))),
    Case("ea_blank_cost", "billing.azure", "cost empty", ea("blank-cost", CostInBillingCurrency=""),
         Q(((2, "BilledCost", "required field BilledCost / CostInBillingCurrency is empty"),))),
    Case("ea_lowercase_currency", "billing.azure", "currency usd",
         ea("usd", BillingCurrencyCode="usd"),
         Q(((2, "BillingCurrency", "not an ISO currency code"),))),
    Case("ea_impossible_date", "billing.azure", "date 13/45/2024", ea("date", Date="13/45/2024"),
         Q(((2, "ChargePeriodStart", "charge date is not a date"),))),
    Case("ea_date_outside_export", "billing.azure", "a February date in a January export",
         ea("outside", Date="02/15/2024"),
         Q(((2, "ChargePeriodStart", "outside the export's billing period"),))),
    Case("ea_unknown_charge_type", "billing.azure", "ChargeType Bonus",
         ea("chargetype", ChargeType="Bonus"),
         Q(((2, "ChargeCategory", "unknown ChargeType / ChargeCategory"),))),
    Case("ea_tags_not_json", "billing.azure", "Tags {not json", ea("tags", Tags="{not json"),
         Q(((2, "Tags", "Tags is neither JSON nor key/value fragments"),))),
    Case("ea_blank_account", "billing.azure", "BillingAccountId empty",
         ea("account", BillingAccountId=""),
         Q(((2, "BillingAccountId", "required field BillingAccountId is empty"),))),
    Case("ea_quantity_text", "billing.azure", "Quantity '12 hours'",
         ea("qty-text", Quantity="12 hours"),
         Q(((2, "ConsumedQuantity", "quantity is not a decimal number"),))),
    Case("ea_negative_usage_quantity", "billing.azure", "Quantity -5 on a Usage charge",
         ea("qty-negative", Quantity="-5"),
         Q(((2, "ConsumedQuantity", "negative quantity on a usage charge"),))),
    # Azure MCA (camelCase)
    Case("mca_cost_in_usd_text", "billing.azure", "costInUsd n/a",
         mca("mca-usd", costInUsd="n/a"), Q(((2, "costInUsd", "is not a decimal number"),))),
    Case("mca_european_decimal", "billing.azure", "cost 5551041,26",
         mca("mca-comma", costInBillingCurrency="5551041,26"),
         Q(((2, "BilledCost", "is not a decimal number"),))),
    Case("mca_day_first_date", "billing.azure", "date 31/01/2024 (day first)",
         mca("mca-dayfirst", date="31/01/2024"),
         Q(((2, "ChargePeriodStart", "charge date is not a date"),))),
    # FOCUS 1.2 (folder runs without a manifest)
    # A FOCUS charge period may lie outside its billing period (purchases, corrections), so a
    # charge starting on February 1st UTC is no fault by itself; a row whose own billing
    # period (written in -05:00: February 1st..March 1st UTC) is not the export's is.
    Case("focus_date_in_wrong_zone", "billing.focus",
         "BillingPeriodStart 2024-01-31T19:00-05:00 = February 1st UTC, in a January export",
         focus("zone", ChargePeriodStart="2024-01-31T23:00:00-05:00",
               ChargePeriodEnd="2024-02-01T23:00:00-05:00",
               BillingPeriodStart="2024-01-31T19:00:00-05:00",
               BillingPeriodEnd="2024-02-29T19:00:00-05:00"),
         Q(((2, "BillingPeriodStart", "is not the export's billing period"),))),
    Case("focus_sku_price_details_not_json", "billing.focus", "SkuPriceDetails {ModelId: x",
         focus("spd", SkuPriceDetails="{ModelId: x"),
         Q(((2, "SkuPriceDetails", "SkuPriceDetails is not a JSON object"),))),
    Case("focus_end_before_start", "billing.focus", "ChargePeriodEnd before ChargePeriodStart",
         focus("backwards", ChargePeriodEnd="2023-12-31T00:00:00Z"),
         Q(((2, "ChargePeriodEnd", "charge period end is not after its start"),))),
    Case("focus_unknown_charge_class", "billing.focus", "ChargeClass Refund",
         focus("class", ChargeClass="Refund"),
         Q(((2, "ChargeClass", "ChargeClass must be empty or Correction"),))),
    Case("focus_effective_cost_nan", "billing.focus", "EffectiveCost NaN",
         focus("eff-nan", EffectiveCost="NaN"),
         Q(((2, "EffectiveCost", "EffectiveCost is not a decimal number"),))),
    Case("focus_unknown_category", "billing.focus", "ChargeCategory Discount",
         focus("category", ChargeCategory="Discount"),
         Q(((2, "ChargeCategory", "unknown ChargeType / ChargeCategory"),))),
    Case("focus_parquet_nan", "billing.focus", "Parquet blob, BilledCost a double NaN",
         focus_parquet_nan, Q(((1, "BilledCost", "is not a decimal number"),))),
    Case("focus_empty_file", "billing.focus", "a 0-byte CSV blob",
         lambda b, r: _focus_file(r, "empty", b""), Empty()),
    # Export runs against their manifests, restatements, duplicates
    Case("header_drift_reordered_extra", "billing.azure",
         "February restated with columns reversed and a new column",
         restate(FEB, _reorder_and_extra), Counted("loaded")),
    Case("missing_optional_columns", "billing.azure",
         "March restated without ProductName, PublisherType, PricingModel",
         restate(MAR, _drop_optional, gz=True), Counted("loaded")),
    Case("billing_bom", "billing.azure", "January restated with a UTF-8 byte-order mark",
         restate(JAN, lambda h, r: (h, r), bom=True), Counted("loaded")),
    Case("duplicate_export_same_scope", "billing.azure",
         "March's run delivered again by a second export of the same scope (would double March)",
         same_scope_copy, Counted("superseded")),
    Case("manifest_row_count_mismatch", "billing.azure",
         "newer January run (dearer) whose manifest declares one row more than delivered",
         newer_bad_run(extra_declared=1), Rejected("manifest says")),
    Case("manifest_blob_missing", "billing.azure",
         "newer January run (dearer) whose manifest lists a blob never delivered",
         newer_bad_run(missing_blob=True),
         Rejected("manifest lists blob(s) not delivered: part_2.csv")),
    # Usage-API pages
    Case("usage_unknown_page_object", "usage", "page object 'list'",
         usage("page-object", _set("object", "list")),
         Q(((None, "object", "page object is not `page`"),))),
    Case("usage_unknown_bucket_object", "usage", "bucket object 'bucket.v2'",
         usage("bucket-object", _set("data.0.object", "bucket.v2")),
         Q(((None, "data[].object", "unknown bucket object type"),))),
    Case("usage_unknown_result_object", "usage", "embeddings result in a completions page",
         usage("result-object",
               _set("data.0.results.0.object", "organization.usage.embeddings.result")),
         Q(((None, "results[].object", "unknown result object type"),))),
    Case("usage_negative_tokens", "usage", "output_tokens -5",
         usage("negative", _set("data.0.results.0.output_tokens", -5)),
         Q(((None, "output_tokens", "output_tokens is negative"),))),
    Case("usage_cached_exceeds_input", "usage", "input_cached_tokens > input_tokens",
         usage("cached", _set("data.0.results.0.input_cached_tokens", 10**15)),
         Q(((None, "input_cached_tokens", "cached tokens exceed input tokens"),))),
    Case("usage_missing_measure", "usage", "no num_model_requests",
         usage("no-requests", _set("data.0.results.0.num_model_requests", _DELETE)),
         Q(((None, "num_model_requests", "num_model_requests is missing"),))),
    Case("usage_bucket_end_before_start", "usage", "end_time before start_time",
         usage("backwards", _set("data.0.end_time", 1704412800 - 86400)),
         Q(((None, "end_time", "bucket end is not after its start"),))),
    Case("usage_truncated_json", "usage", "a page cut off mid-object",
         usage("truncated", lambda p: json.dumps(p)[:200]),
         Q(((None, None, "malformed JSON"),))),
    Case("usage_unknown_channel", "usage", "a page under usage/bogus_channel/",
         usage("channel", lambda p: None, channel="bogus_channel"),
         Q(((None, "channel", "unknown usage channel folder"),))),
    Case("usage_tokens_as_strings", "usage", "input_tokens \"12\" (a string)",
         usage("string-tokens", _set("data.0.results.0.input_tokens", "12")),
         Q(((None, None, "malformed JSON"),))),
    Case("usage_jsonl_garbage_line", "usage", "a .jsonl page line cut short",
         usage_jsonl_one_bad_line, Q(((None, None, "malformed JSON"),))),
    Case("usage_redelivered_new_name", "usage", "January 5th's page again under a new name",
         usage_copy, Counted("deduplicated")),
    Case("usage_empty_file", "usage", "a 0-byte page file", usage_empty, Empty()),
    # Finance feeds
    Case("revenue_thousands_separator", "finance.revenue", "amount \"1,234.00\"",
         revenue("thousands", 'B-1,1,2024-01-10,api,"1,234.00",USD,x'),
         Q(((None, "amount", "amount is not a plain decimal number"),))),
    Case("revenue_nan", "finance.revenue", "amount NaN",
         revenue("nan", "B-2,1,2024-01-10,api,NaN,USD,x"),
         Q(((None, "amount", "amount is not a plain decimal number"),))),
    Case("revenue_1e400", "finance.revenue", "amount 1e400",
         revenue("1e400", "B-3,1,2024-01-10,api,1e400,USD,x"),
         Q(((None, "amount", "amount is not a plain decimal number"),))),
    Case("revenue_us_date", "finance.revenue", "revenue_date 01/10/2024",
         revenue("usdate", "B-4,1,01/10/2024,api,10.00,USD,x"),
         Q(((None, "revenue_date", "revenue_date is not an ISO date"),))),
    Case("revenue_lowercase_currency", "finance.revenue", "currency usd",
         revenue("currency", "B-5,1,2024-01-10,api,10.00,usd,x"),
         Q(((None, "currency", "currency does not match"),))),
    Case("revenue_version_zero", "finance.revenue", "entry_version 0",
         revenue("version", "B-6,0,2024-01-10,api,10.00,USD,x"),
         Q(((None, "entry_version", "entry_version is below 1"),))),
    Case("revenue_conflicting_duplicate", "finance.revenue",
         "an existing entry and version with another amount", existing_revenue_conflict,
         Q(((None, "entry_version", "conflicting duplicate of the same entry_version"),))),
    Case("revenue_duplicate_file", "finance.revenue", "the ledger again under a new name",
         revenue_copy("dup"), Counted("deduplicated|superseded")),
    Case("revenue_bom", "finance.revenue", "the ledger again, with a byte-order mark",
         revenue_copy("bom", bom=True), Counted("deduplicated|superseded")),
    Case("revenue_extra_column", "finance.revenue", "the ledger again, with a cost_center column",
         revenue_copy("extra", extra_column=True), Counted("deduplicated|superseded")),
    Case("revenue_header_only", "finance.revenue", "a header and no rows",
         revenue("header-only", ""), Empty()),
    Case("revenue_empty_file", "finance.revenue", "a 0-byte file",
         finance_text("revenue", "z_bad_empty.csv", b""), Empty()),
    Case("settlement_supersedes_unknown", "finance.settlements",
         "supersedes a statement that does not exist",
         settlement("orphan", "ST-X,NO-SUCH,OAI-MSFT-REVSHARE,payable,Microsoft,2024-01-01,"
                    "2024-04-01,1.00,0.20,0.20,USD,2024-05-01,,"),
         Q(((None, "supersedes_statement_id", "supersedes unknown statement NO-SUCH"),))),
    Case("settlement_bad_direction", "finance.settlements", "direction 'pay'",
         settlement("direction", "ST-Y,,OAI-MSFT-REVSHARE,pay,Microsoft,2024-01-01,2024-04-01,"
                    "1.00,0.20,0.20,USD,2024-05-01,,"),
         Q(((None, "direction", "direction must be one of"),))),
    Case("settlement_period_backwards", "finance.settlements", "period_end before period_start",
         settlement("period", "ST-Z,,OAI-MSFT-REVSHARE,payable,Microsoft,2024-04-01,2024-01-01,"
                    "1.00,0.20,0.20,USD,2024-05-01,,"),
         Q(((None, "period_end", "period_end must be after period_start"),))),
    Case("fx_nan_rate", "finance.fx", "usd_per_unit NaN",
         finance_text("fx", "z_bad_fx.csv", "rate_date,currency,usd_per_unit\n2024-01-05,EUR,NaN\n"),
         Q(((None, "usd_per_unit", "usd_per_unit is not a plain decimal number"),))),
    Case("prices_unknown_token_type", "finance.prices", "token_type 'audio'",
         finance_text("prices", "z_bad_prices.csv",
                      "channel,model,token_type,unit_tokens,unit_price,currency,effective_from,"
                      "effective_to\nopenai,gpt-x,audio,1000000,1.00,USD,2024-01-01,\n"),
         Q(((None, "token_type", "token_type must be one of"),))),
    # Inputs that stop the run (each in a landing of its own)
    Case("billing_truncated_gzip", "billing.azure", "a gzip blob cut in half", truncated_blob,
         Fails(("cannot be read",))),
    Case("billing_wrong_encoding", "billing.azure", "a blob in UTF-16", utf16_blob,
         Fails(("line 1: not UTF-8 text",))),
    Case("ea_missing_required_column", "billing.azure", "no ChargeType column",
         ea_without("ChargeType"), Fails(("missing required column(s) ChargeType",))),
    Case("focus_missing_provider", "billing.focus", "no ServiceProviderName / ProviderName",
         focus_without_provider,
         Fails(("missing required column(s) ProviderName or ServiceProviderName",))),
    Case("manifest_not_json", "billing.azure", "manifest.json cut short", bad_manifest,
         Fails(("invalid export manifest",))),
    Case("billing_period_start", "billing.azure", "runInfo.startDate '2024-01'", bad_period_start,
         Fails(("invalid export manifest: runInfo.startDate '2024-01' is not a date-time",))),
    Case("usage_truncated_gzip", "usage", "a .json.gz page cut in half", usage_truncated_gzip,
         Fails(("cannot be read",))),
    Case("revenue_missing_column", "finance.revenue", "no amount column",
         revenue("no-amount", "B-7,1,2024-01-10,api,USD,x",
                 header="entry_id,entry_version,revenue_date,product_line,currency,description"),
         Fails(("missing required column(s) amount",))),
    Case("revenue_wrong_encoding", "finance.revenue", "the ledger again, in Latin-1 (Café)",
         revenue_copy("latin1", encoding="latin-1", accent=True),
         Fails(("line 2", "not UTF-8"))),
    Case("revenue_unknown_currency", "finance.revenue", "currency XYZ (no FX rate)",
         revenue("xyz", "B-8,1,2024-01-10,api,10.00,XYZ,x"),
         Fails(("no FX rate to USD for XYZ on 2024-01-10",), names_feed="finance/revenue")),
    Case("contract_overlapping_terms", "finance.contracts",
         "two terms of one agreement and direction overlapping",
         finance_text("contracts", "contracts.csv",
                      f"{CONTRACT_HEADER}\nA-1,payable,P,revenue:api,0.20,2024-01-01,2024-07-01,"
                      ",,1.00,0.001,30\nA-1,payable,P,revenue:api,0.25,2024-06-01,,,,1.00,0.001,"
                      "30\n"),
         Fails(
             ("agreement A-1 (payable): terms from 2024-01-01 and 2024-06-01 overlap",),
             names_feed="finance/contracts",
         )),
    Case("settlements_missing_column", "finance.settlements", "no amount column",
         finance_text("settlements", "s.csv", SETTLEMENT_HEADER.replace(",amount,", ",") + "\n"),
         Fails(("missing required column(s) amount",))),
    Case("fx_truncated_gzip", "finance.fx", "an FX .csv.gz cut in half", fx_truncated_gzip,
         Fails(("cannot be read",))),
]  # fmt: skip

# A settlement for an agreement no contract names is not bad input: it is reconciled as
# `unexpected_settlement` so a reviewer sees it (tests/test_bad_inputs.py checks that row).
UNKNOWN_AGREEMENT = settlement(
    "unknown-agreement",
    "ST-U,,NO-SUCH-AGREEMENT,receivable,Somebody,2024-01-01,2024-04-01,50.00,0.20,10.00,USD,"
    "2024-05-01,,",
)
