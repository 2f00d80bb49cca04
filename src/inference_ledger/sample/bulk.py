"""Bulk landing data for benchmarks: one night (or a year of nights) at millions of rows.

The scenario generator (generator.py) builds plausible quarters row by row in Python, which is
right for exact figures and far too slow for 10M usage results. This module writes the same
input formats (usage pages as JSONL gzip, Azure EA month-to-date CSV exports + manifest.json,
the finance feeds of the scenario) with every per-row column built as a pyarrow array, so the
cost is mostly in C: 10.5 s for 1M usage results + 100k billing lines, gzip included.
Figures are random but seeded; each usage result has its own natural key (`api_key_id`), and a
share of pages is redelivered in a second file so the dedupe has work to do.
"""

from __future__ import annotations

import calendar
import gzip
import io
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from inference_ledger.periods import Quarter
from inference_ledger.sample.billing_export import EXPORT_NAME, SCOPE
from inference_ledger.sample.billing_fleet import Resource, build_fleet
from inference_ledger.sample.billing_rows import (
    BILLING_ACCOUNT_ID,
    BILLING_ACCOUNT_NAME,
    EA_COLUMNS,
)
from inference_ledger.sample.catalog import models_on
from inference_ledger.sample.finance import write_finance
from inference_ledger.sample.sink import Sink, json_bytes

RESULTS_PER_PAGE = 25
BLOB_ROWS = 250_000  # rows per export blob (Azure splits large exports into partitions)
REDELIVERED_SHARE = 0.01  # of each channel's pages, delivered again in a second file
AZURE_SHARE = 0.3  # of usage results on the partner's resale channel
GZIP_LEVEL = 1  # speed over size: the benchmark measures reading, not the generator
FLEET_BASE_TOTAL = 15  # resources at scale 1.0 (sample.billing_fleet.FLEET_BASE)


@dataclass
class BulkSummary:
    usage_results: int = 0  # distinct natural keys
    usage_results_written: int = 0  # including redelivered copies
    usage_files: int = 0
    billing_lines: int = 0
    billing_files: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    nights: list[str] = field(default_factory=list)


def _s(values) -> pa.Array:
    """Integers as decimal text."""
    return pc.cast(pa.array(values), pa.string())


def _fixed(units: np.ndarray, scale: int) -> pa.Array:
    """Non-negative integers of 10^-scale as plain decimal text ('123.450000'): exact."""
    whole = _s(units // 10**scale)
    frac = pc.utf8_lpad(_s(units % 10**scale), scale, "0")
    return pc.binary_join_element_wise(whole, frac, ".")


def _concat(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


# ---------------------------------------------------------------- usage


def _usage_pages(
    channel: str, night: date, first: int, n: int, pages_total: int, page0: int, rng
) -> list[str]:
    """Pages (JSON text) holding results [first, first + n) of a channel's night; every page
    sits in one hourly bucket."""
    models = [m.name for m in models_on(night)]
    idx = np.arange(first, first + n, dtype=np.int64)
    inp = rng.integers(200, 4_000_000, n, dtype=np.int64)
    cached = inp * rng.integers(0, 50, n, dtype=np.int64) // 100
    out = inp * rng.integers(15, 150, n, dtype=np.int64) // 100
    reqs = np.maximum(1, inp // rng.integers(600, 4000, n, dtype=np.int64))
    model = pa.array(models).take(pa.array(idx % len(models)))
    project = pc.utf8_lpad(_s(idx * 7919 % 997), 24, "0")
    batch = pa.array(["true", "false", "false", "false", "false"]).take(pa.array(idx % 5))
    results = _concat(
        '{"object":"organization.usage.completions.result","input_tokens":',
        _s(inp),
        ',"output_tokens":',
        _s(out),
        ',"input_cached_tokens":',
        _s(cached),
        ',"input_audio_tokens":0,"output_audio_tokens":0,"num_model_requests":',
        _s(reqs),
        ',"project_id":"proj_',
        project,
        '","user_id":"user_',
        pc.utf8_lpad(_s(idx % 100_003), 6, "0"),
        '","api_key_id":"key_',
        pc.utf8_lpad(_s(idx), 10, "0"),
        '","model":"',
        model,
        '","batch":',
        batch,
        ',"service_tier":"default"}',
    )
    n_pages = math.ceil(n / RESULTS_PER_PAGE)
    offsets = pa.array([min(i * RESULTS_PER_PAGE, n) for i in range(n_pages + 1)], pa.int32())
    bodies = pc.binary_join(pa.ListArray.from_arrays(offsets, results), ",")
    day0 = int(datetime(night.year, night.month, night.day, tzinfo=UTC).timestamp())
    hours = (np.arange(page0, page0 + n_pages, dtype=np.int64) * 24) // max(pages_total, 1)
    starts = day0 + 3600 * hours
    pages = _concat(
        '{"object":"page","data":[{"object":"bucket","start_time":',
        _s(starts),
        ',"end_time":',
        _s(starts + 3600),
        ',"results":[',
        bodies,
        ']}],"has_more":false,"next_page":null}',
    )
    return pages.to_pylist()


def write_usage_night(
    sink: Sink, night: date, results: int, seed: int, files_per_channel: int, summary: BulkSummary
) -> None:
    """`results` usage results of one night over both channels, as `.jsonl.gz` files in the
    night's folders, plus one file per channel redelivering a share of its pages."""
    for c_index, (channel, share) in enumerate(
        (("openai", 1 - AZURE_SHARE), ("azure_openai", AZURE_SHARE))
    ):
        n = round(results * share)
        if n == 0:
            continue
        rng = np.random.default_rng([seed, night.toordinal(), c_index])
        folder = f"usage/{channel}/{night:%Y-%m-%d}"
        pages_total = math.ceil(n / RESULTS_PER_PAGE)
        k = max(1, min(files_per_channel, pages_total))
        # Whole pages per file, so each page's bucket follows from its global page index.
        per_file = math.ceil(pages_total / k)
        first_pages: list[str] = []
        for f in range(k):
            p0 = f * per_file
            p1 = min(pages_total, p0 + per_file)
            if p0 >= p1:
                break
            r0, r1 = p0 * RESULTS_PER_PAGE, min(n, p1 * RESULTS_PER_PAGE)
            pages = _usage_pages(channel, night, r0, r1 - r0, pages_total, p0, rng)
            if f == 0:
                first_pages = pages
            data = ("\n".join(pages) + "\n").encode()
            summary.bytes += sink.write(f"{folder}/page-{f + 1:04d}.jsonl.gz", _gzip(data))
            summary.usage_files += 1
        again = first_pages[: math.ceil(len(first_pages) * REDELIVERED_SHARE)]
        if again:
            data = ("\n".join(again) + "\n").encode()
            summary.bytes += sink.write(f"{folder}/page-{k + 1:04d}.jsonl.gz", _gzip(data))
            summary.usage_files += 1
            summary.usage_results_written += sum(p.count('"api_key_id"') for p in again)
        summary.usage_results += n
        summary.usage_results_written += n


# ---------------------------------------------------------------- billing


def _us(d: date) -> str:
    return f"{d:%m/%d/%Y}"


def write_billing_month_to_date(
    sink: Sink, through: date, lines: int, seed: int, summary: BulkSummary
) -> None:
    """One Azure EA actual-cost month-to-date run of `through`'s month with `lines` rows
    (resources x days from the 1st to `through`), delivered the morning after `through`."""
    if lines <= 0:
        return
    first = through.replace(day=1)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    n_days = (through - first).days + 1
    fleet = build_fleet(seed, math.ceil(lines / n_days) / FLEET_BASE_TOTAL + 0.1)
    rng = np.random.default_rng([seed, through.toordinal(), 99])
    table = _month_to_date_table(fleet, first, last, n_days, lines, rng)
    run_id = str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | through.toordinal(), version=4))
    folder = f"billing/azure/{EXPORT_NAME}/{first:%Y%m%d}-{last:%Y%m%d}/{run_id}"
    blobs = _write_blobs(sink, table, folder, run_id, summary)
    manifest = _month_to_date_manifest(through, first, run_id, blobs, lines)
    summary.bytes += sink.write(f"{folder}/manifest.json", json_bytes(manifest, indent=2))
    summary.billing_lines += lines


def _month_to_date_table(
    fleet: list[Resource], first: date, last: date, n_days: int, lines: int, rng
) -> pa.Table:
    """The run's rows in EA_COLUMNS: line k bills resource k % len(fleet) on day
    k // len(fleet) from `first`, a random cost (`rng`) and the quantity it buys."""
    k = np.arange(lines, dtype=np.int64)
    res = pa.array(k % len(fleet))
    day = pa.array(k // len(fleet))
    days = [first + timedelta(days=i) for i in range(n_days)]

    def per_res(fn) -> pa.Array:
        return pa.array([fn(r) for r in fleet]).take(res)

    cents = rng.integers(100, 2_000_000, lines, dtype=np.int64)
    price4 = np.array([int(r.sku.price * 10_000) for r in fleet], dtype=np.int64)[k % len(fleet)]
    qty_micro = cents * 100_000_000 // price4  # (cents / 100) / (price4 / 10^4), in 10^-6
    cols = {
        "BillingAccountId": pa.array([BILLING_ACCOUNT_ID] * lines),
        "BillingAccountName": pa.array([BILLING_ACCOUNT_NAME] * lines),
        "BillingPeriodStartDate": pa.array([_us(first)] * lines),
        "BillingPeriodEndDate": pa.array([_us(last)] * lines),
        "SubscriptionId": per_res(lambda r: r.subscription_id),
        "SubscriptionName": per_res(lambda r: r.subscription_name),
        "ResourceGroup": per_res(lambda r: r.resource_group),
        "Date": pa.array([_us(d) for d in days]).take(day),
        "ProductName": per_res(
            lambda r: f"{r.sku.category} {r.sku.subcategory} - {r.sku.meter_name} - {r.region_name}"
        ),
        "MeterCategory": per_res(lambda r: r.sku.category),
        "MeterSubCategory": per_res(lambda r: r.sku.subcategory),
        "MeterId": per_res(
            lambda r: str(uuid.uuid5(uuid.NAMESPACE_URL, f"azure-meter:{r.sku.code}:{r.region}"))
        ),
        "MeterName": per_res(lambda r: r.sku.meter_name),
        "MeterRegion": per_res(lambda r: r.region_name),
        "UnitOfMeasure": per_res(lambda r: r.sku.unit),
        "Quantity": _fixed(qty_micro, 6),
        "EffectivePrice": per_res(lambda r: str(r.sku.price)),
        "CostInBillingCurrency": _fixed(cents, 2),
        "BillingCurrencyCode": pa.array(["USD"] * lines),
        "ResourceLocation": per_res(lambda r: r.region),
        "ConsumedService": per_res(lambda r: r.sku.service),
        "ResourceId": per_res(lambda r: r.resource_id),
        # An untagged resource has an empty field (null), not a quoted empty string.
        "Tags": per_res(lambda r: r.tags or None),
        "ChargeType": pa.array(["Usage"] * lines),
        "PublisherType": pa.array(["Azure"] * lines),
        "PricingModel": pa.array(["OnDemand"] * lines),
    }
    return pa.table([cols[c] for c in EA_COLUMNS], names=list(EA_COLUMNS))


def _write_blobs(
    sink: Sink, table: pa.Table, folder: str, run_id: str, summary: BulkSummary
) -> list[dict]:
    """The table as gzip CSV blobs of equal size (at most BLOB_ROWS rows, and at least two blobs
    from 1000 rows on); their manifest entries."""
    lines = table.num_rows
    n_blobs = max(2 if lines >= 1000 else 1, math.ceil(lines / BLOB_ROWS))
    per_blob = math.ceil(lines / n_blobs)
    blobs = []
    for b in range(n_blobs):
        chunk = table.slice(b * per_blob, per_blob)
        buf = io.BytesIO()
        pacsv.write_csv(chunk, buf)
        name = f"part_{b + 1}_{run_id[:8]}.csv.gz"
        size = sink.write(f"{folder}/{name}", _gzip(buf.getvalue()))
        summary.bytes += size
        summary.billing_files += 1
        blobs.append({"blobName": name, "byteCount": size, "dataRowCount": chunk.num_rows})
    return blobs


def _month_to_date_manifest(
    through: date, first: date, run_id: str, blobs: list[dict], lines: int
) -> dict:
    """The run's manifest.json (2024-04-01 shape, legacy layout)."""
    submitted = f"{through + timedelta(days=1):%Y-%m-%d}T03:00:00Z"
    return {
        "manifestVersion": "2024-04-01",
        "byteCount": sum(b["byteCount"] for b in blobs),
        "blobCount": len(blobs),
        "dataRowCount": lines,
        "exportConfig": {
            "exportName": EXPORT_NAME,
            "resourceId": SCOPE,
            "dataVersion": "2021-10-01",
            "apiVersion": "2023-07-01-preview",
            "type": "ActualCost",
            "timeFrame": "MonthToDate",
            "granularity": "Daily",
        },
        "deliveryConfig": {
            "partitionData": True,
            "dataOverwriteBehavior": "CreateNewReport",
            "fileFormat": "Csv",
            "compressionMode": "gzip",
            "rootFolderPath": f"billing/azure/{EXPORT_NAME}",
        },
        "runInfo": {
            "executionType": "Scheduled",
            "submittedTime": submitted,
            "runId": run_id,
            "startDate": f"{first:%Y-%m-%d}T00:00:00Z",
            "endDate": f"{through:%Y-%m-%d}T00:00:00Z",
        },
        "blobs": blobs,
    }


# ---------------------------------------------------------------- whole landings


def _finish(sink: Sink, summary: BulkSummary, t0: float) -> BulkSummary:
    summary.files = sink.files
    summary.seconds = round(time.perf_counter() - t0, 3)
    return summary


def write_night(
    sink: Sink,
    night: date,
    usage_results: int,
    billing_lines: int,
    *,
    seed: int = 7,
    files_per_channel: int = 4,
) -> BulkSummary:
    """One night's delivery into an existing landing: the usage of `night` and the billing
    month-to-date run delivered after it. No finance feeds (see write_bulk_landing)."""
    t0 = time.perf_counter()
    summary = BulkSummary(nights=[night.isoformat()])
    write_usage_night(sink, night, usage_results, seed, files_per_channel, summary)
    write_billing_month_to_date(sink, night, billing_lines, seed, summary)
    return _finish(sink, summary, t0)


def write_bulk_landing(
    out_dir: Path,
    first_night: date,
    nights: int = 1,
    *,
    usage_results: int,
    billing_lines: int,
    seed: int = 7,
    files_per_channel: int = 4,
) -> BulkSummary:
    """A landing folder with `nights` consecutive nights from `first_night`: per night
    `usage_results` usage results; per billing month one month-to-date run through its last
    night with `billing_lines` rows; the scenario's finance feeds for the quarters covered."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    sink = Sink(out_dir)
    summary = BulkSummary()
    days = [first_night + timedelta(days=i) for i in range(nights)]
    quarters = sorted({Quarter.of(d) for d in days}, key=lambda q: q.start)
    write_finance(sink, quarters, seed, 1.0)
    for d in days:
        write_usage_night(sink, d, usage_results, seed, files_per_channel, summary)
        summary.nights.append(d.isoformat())
    last_of_month: dict[str, date] = {}
    for d in days:
        last_of_month[f"{d:%Y-%m}"] = d
    for through in last_of_month.values():
        write_billing_month_to_date(sink, through, billing_lines, seed, summary)
    return _finish(sink, summary, t0)
