"""Usage-API completions pages per channel and day, with deliberate redeliveries.

Volumes are allocated per quarter, so the per-quarter figures depend on neither seed nor scale:
- `openai`: total tokens (input + output) = inference spend x TOKENS_PER_SPEND_USD, exactly;
- `azure_openai`: priced with the price sheet (catalog), the tokens come to the partner's
  reported resale revenue for the quarter (to within rounding of whole tokens), which is what
  the receivable cross-check compares against. The token counts themselves vary with the seed.

Options, each off by default (the files are then byte-identical to a run without them):
`newer_fields` writes the newer completions usage fields (cache writes, uncached, and the
text / image / audio splits, where input_audio_tokens is uncached audio) with the same totals;
`unfinished_pull` withholds the last page of one first-party pull (the first day with two or
more results; a one-page day is paged in halves), so the page before it says has_more with a
cursor nothing answers: a partial pull (ingest/usage.py::partial_pulls). The withheld results
and tokens are left out of the stats; `unfinished_pulls` holds the expected warning.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from inference_ledger.periods import Quarter
from inference_ledger.sample.allocate import allocate_cents, allocate_int
from inference_ledger.sample.catalog import CHANNELS, UNIT_TOKENS, Model, models_on
from inference_ledger.sample.scenario import SCENARIO_QUARTERS
from inference_ledger.sample.sink import Sink, gzip_bytes, json_bytes, rng_for

PROJECTS_BASE = {"openai": 4, "azure_openai": 3}  # per channel at scale 1.0
MAX_RESULTS_PER_PAGE = 25
TOKENS_PER_SPEND_USD = 180_000  # ~$5.6 of inference spend per 1M first-party tokens
REASONING_MODELS = frozenset({"o1", "o1-mini", "o3", "o3-mini"})
REDELIVERY_P = 0.04  # a page fetched twice lands in the same day folder under a new name
OVERLAP_P = 0.02  # a re-pull overlapping the previous day lands in the next day's folder
CONFLICT_P = 0.03  # with `conflicts`: a page was also pulled at noon, before the day was complete
PARTIAL_PULL_HOURS = 12


@dataclass(frozen=True)
class Project:
    index: int
    project_id: str
    batch_enabled: bool
    weight: int


@dataclass(frozen=True)
class Cell:
    day: date
    project: Project
    model: Model
    batch: bool
    service_tier: str
    weight: int


@dataclass
class UsageStats:
    results_unique: int = 0
    results_written: int = 0
    pages_written: int = 0
    redelivered_pages: int = 0  # includes the overlapping copies
    overlapping_pages: int = 0
    # Earlier partial pulls of a page (same bucket keys, smaller numbers): their results lose to
    # the complete pull as conflicting redeliveries; a result the partial pull happens to match
    # exactly (nothing used yet) is an ordinary duplicate.
    partial_pull_pages: int = 0
    conflicting_results: int = 0
    partial_pull_identical_results: int = 0
    # With `unfinished_pull`: landing path -> the warning the ingest gives it; results withheld.
    unfinished_pulls: dict[str, str] = field(default_factory=dict)
    withheld_results: int = 0
    tokens: dict[str, dict[str, int]] = field(default_factory=dict)  # channel -> quarter
    azure_priced_usd: dict[str, Decimal] = field(default_factory=dict)  # quarter


def _projects(channel: str, seed: int, scale: float) -> list[Project]:
    rng = rng_for(seed, "usage", "projects", channel)
    alphabet = string.ascii_letters + string.digits
    return [
        Project(
            index=i,
            project_id="proj_" + "".join(rng.choice(alphabet) for _ in range(24)),
            batch_enabled=i % 2 == 1,
            weight=rng.randint(50, 150),
        )
        for i in range(max(1, round(PROJECTS_BASE[channel] * scale)))
    ]


def _variants(channel: str, project: Project, model: Model, day: date):
    """(batch, service_tier, weight) combinations a project uses for a model on a day."""
    out = [(False, "default", 100)]
    if project.batch_enabled and model.batch:
        out.append((True, "default", 30))
    if channel == "openai" and model.name in ("o3", "gpt-5"):
        out.append((False, "flex", 15))
    if (
        channel == "openai"
        and project.batch_enabled
        and day >= date(2025, 4, 1)
        and model.name in ("gpt-4o", "gpt-4.1", "gpt-5")
    ):
        out.append((False, "priority", 10))
    return out


def _model_weight(model: Model, day: date) -> int:
    # New models ramp up over ~2 months and retiring ones ramp down the same way.
    ramp = min(60, (day - model.available_from).days + 6)
    if model.retired_from is not None:
        ramp = min(ramp, (model.retired_from - day).days + 6)
    return model.traffic_weight * max(ramp, 1)


def _cells(channel: str, q: Quarter, projects: list[Project], seed: int) -> list[Cell]:
    rng = rng_for(seed, "usage", "cells", channel, q.label)
    cells = []
    day = q.start
    while day < q.end:
        day_w = 10_000 + 35 * (day - q.start).days
        for p in projects:
            for m in models_on(day):
                for batch, tier, vw in _variants(channel, p, m, day):
                    w = p.weight * _model_weight(m, day) * vw * day_w * rng.randint(90, 110)
                    cells.append(Cell(day, p, m, batch, tier, w))
        day += timedelta(days=1)
    return cells


def _shape(cell: Cell, rng):
    """(cached fraction of input, output/input ratio, average input tokens per request)."""
    price = cell.model.price_on(cell.day)
    cached = Decimal(rng.randint(5, 45)) / 100 if price.cached_input < price.input else Decimal(0)
    lo, hi = (60, 150) if cell.model.name in REASONING_MODELS else (15, 60)
    return cached, Decimal(rng.randint(lo, hi)) / 100, rng.randint(600, 4000)


def _result(cell: Cell, inp: int, cached: int, out: int, avg: int, newer: bool = False) -> dict:
    r = {
        "object": "organization.usage.completions.result",
        "input_tokens": inp,
        "output_tokens": out,
        "input_cached_tokens": cached,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
    }
    if newer:
        r.update(_newer_fields(inp, cached, out))
    return {
        **r,
        "num_model_requests": max(1, inp // avg) if inp else 0,
        "project_id": cell.project.project_id,
        "user_id": None,
        "api_key_id": None,
        "model": cell.model.name,
        "batch": cell.batch,
        "service_tier": cell.service_tier,
    }


def _newer_fields(inp: int, cached: int, out: int) -> dict:
    """The newer split of the same totals: a twentieth of what is not cached was written to
    the cache; all text (no image or audio), so input_audio_tokens stays 0."""
    write = (inp - cached) // 20
    return {
        "input_uncached_tokens": inp - cached - write,
        "input_cache_write_tokens": write,
        "input_text_tokens": inp - cached - write,
        "input_image_tokens": 0,
        "input_cached_text_tokens": cached,
        "input_cached_image_tokens": 0,
        "input_cached_audio_tokens": 0,
        "output_text_tokens": out,
        "output_image_tokens": 0,
    }


def _round(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_HALF_EVEN))


def price_tokens(model: Model, day: date, inp: int, cached: int, out: int) -> Decimal:
    p = model.price_on(day)
    return ((inp - cached) * p.input + cached * p.cached_input + out * p.output) / UNIT_TOKENS


def quarter_results(
    channel: str, q: Quarter, projects: list[Project], seed: int, stats, newer: bool = False
):
    """{day: [result, ...]} for one channel and quarter (`newer`: with the newer fields)."""
    targets = SCENARIO_QUARTERS[q.label]
    cells = _cells(channel, q, projects, seed)
    weights = [c.weight for c in cells]
    rng = rng_for(seed, "usage", "shape", channel, q.label)
    by_day: dict[date, list[dict]] = {}
    tokens = 0
    priced = Decimal(0)
    if channel == "azure_openai":
        dollars = allocate_cents(targets.received_basis_usd, weights)
        for cell, usd in zip(cells, dollars, strict=True):
            c, r, avg = _shape(cell, rng)
            p = cell.model.price_on(cell.day)
            per_input_token = (p.input * (1 - c) + p.cached_input * c + p.output * r) / UNIT_TOKENS
            inp = _round(usd / per_input_token)
            cached, out = _round(inp * c), _round(inp * r)
            priced += price_tokens(cell.model, cell.day, inp, cached, out)
            tokens += inp + out
            by_day.setdefault(cell.day, []).append(_result(cell, inp, cached, out, avg, newer))
        stats.azure_priced_usd[q.label] = priced
    else:
        total = int(targets.inference_spend_usd) * TOKENS_PER_SPEND_USD
        for cell, t in zip(cells, allocate_int(total, weights), strict=True):
            c, r, avg = _shape(cell, rng)
            inp = _round(t / (1 + r))
            out = t - inp
            tokens += t
            result = _result(cell, inp, _round(inp * c), out, avg, newer)
            by_day.setdefault(cell.day, []).append(result)
    stats.tokens.setdefault(channel, {})[q.label] = tokens
    return by_day


def _pages(day: date, results: list[dict], rng) -> list[dict]:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    chunks = [
        results[i : i + MAX_RESULTS_PER_PAGE] for i in range(0, len(results), MAX_RESULTS_PER_PAGE)
    ]
    pages = []
    for k, chunk in enumerate(chunks):
        more = k + 1 < len(chunks)
        bucket = {"object": "bucket", "start_time": start, "end_time": start + 86_400}
        pages.append(
            {
                "object": "page",
                "data": [{**bucket, "results": chunk}],
                "has_more": more,
                "next_page": f"page_{rng.getrandbits(96):024x}" if more else None,
            }
        )
    return pages


def _partial(page: dict) -> dict:
    """The page as a pull at noon saw it: every count at half (rounded down), so cached tokens
    stay within input tokens and each non-zero count differs from the complete pull's."""
    # Newer fields halve too: rounded down, the parts stay within their halved totals.
    measures = ("input_tokens", "output_tokens", "input_cached_tokens", "num_model_requests")
    measures += tuple(_newer_fields(0, 0, 0))
    bucket = page["data"][0]
    results = [
        {**r, **{m: r[m] * PARTIAL_PULL_HOURS // 24 for m in measures if m in r}}
        for r in bucket["results"]
    ]
    return {**page, "data": [{**bucket, "results": results}]}


def _write_partial_pull(sink: Sink, folder: str, day: date, page: dict, stats) -> None:
    """An earlier, partial pull of `page`: dated at noon of its day and named to sort before
    the complete pull, so the complete one is the newest by either."""
    partial = _partial(page)
    noon = int(datetime(day.year, day.month, day.day, PARTIAL_PULL_HOURS, tzinfo=UTC).timestamp())
    sink.write(f"{folder}/page-0000-partial.json", json_bytes(partial), mtime=noon)
    results = partial["data"][0]["results"]
    same = sum(a == b for a, b in zip(results, page["data"][0]["results"], strict=True))
    stats.partial_pull_pages += 1
    stats.pages_written += 1
    stats.results_written += len(results)
    stats.conflicting_results += len(results) - same
    stats.partial_pull_identical_results += same


def _write_day(
    sink: Sink,
    channel: str,
    day: date,
    pages: list[dict],
    prev,
    rng,
    stats,
    conflicts: bool = False,
    conflict_rng=None,
) -> str:
    """Writes a day's pages (and any copies); returns the file holding the pull's last page."""
    folder = f"usage/{channel}/{day:%Y-%m-%d}"
    kind = rng.random()
    if kind < 0.12:
        lines = b"".join(json_bytes(p) + b"\n" for p in pages)
        last = f"{folder}/page-0001.jsonl"
        sink.write(last, lines)
        n = 1
    else:
        gz = kind < 0.25
        for n, page in enumerate(pages, start=1):
            if gz:
                last = f"{folder}/page-{n:04d}.json.gz"
                sink.write(last, gzip_bytes(json_bytes(page)))
            else:
                last = f"{folder}/page-{n:04d}.json"
                sink.write(last, json_bytes(page))
    stats.pages_written += len(pages)
    stats.results_written += sum(len(p["data"][0]["results"]) for p in pages)
    copies = []
    if rng.random() < REDELIVERY_P:
        copies.append(rng.choice(pages))
    if prev and rng.random() < OVERLAP_P:
        copies.append(prev[-1])
        stats.overlapping_pages += 1
    for page in copies:
        n += 1
        sink.write(f"{folder}/page-{n:04d}.json", json_bytes(page))
        stats.redelivered_pages += 1
        stats.pages_written += 1
        stats.results_written += len(page["data"][0]["results"])
    # Its own random stream, so switching conflicts on leaves every other file as it was.
    if conflicts and conflict_rng.random() < CONFLICT_P:
        _write_partial_pull(sink, folder, day, conflict_rng.choice(pages), stats)
    return last


def _withhold_last_page(pages: list[dict], q: Quarter, stats) -> list[dict]:
    """The pages of a pull whose last page never arrived; its results leave the stats. A
    one-page day is paged in two halves first, so that there is a page to withhold."""
    if len(pages) == 1:
        bucket = pages[0]["data"][0]
        results, day = bucket["results"], bucket["start_time"]
        half = (len(results) + 1) // 2
        pages = [
            {**pages[0], "data": [{**bucket, "results": part}], "has_more": more, "next_page": cur}
            for part, more, cur in (
                (results[:half], True, f"page_unfinished_{day}"),
                (results[half:], False, None),
            )
        ]
    withheld = pages[-1]["data"][0]["results"]
    stats.withheld_results += len(withheld)
    stats.results_unique -= len(withheld)
    stats.tokens["openai"][q.label] -= sum(r["input_tokens"] + r["output_tokens"] for r in withheld)
    return pages[:-1]


def write_usage(
    sink: Sink,
    quarters: list[Quarter],
    seed: int,
    scale: float,
    conflicts: bool = False,
    *,
    newer_fields: bool = False,
    unfinished_pull: bool = False,
) -> UsageStats:
    """`conflicts` adds earlier partial pulls of some pages (conflicting redeliveries);
    `newer_fields` and `unfinished_pull` as in the module docstring."""
    stats = UsageStats()
    for channel in CHANNELS:
        projects = _projects(channel, seed, scale)
        rng = rng_for(seed, "usage", "files", channel)
        conflict_rng = rng_for(seed, "usage", "conflicts", channel)
        prev: list[dict] = []
        for q in quarters:
            by_day = quarter_results(channel, q, projects, seed, stats, newer_fields)
            for day in sorted(by_day):
                pages = _pages(day, by_day[day], rng)
                stats.results_unique += len(by_day[day])
                unfinished = (
                    unfinished_pull
                    and channel == "openai"
                    and not stats.unfinished_pulls
                    and len(by_day[day]) >= 2
                )
                if unfinished:
                    pages = _withhold_last_page(pages, q, stats)
                last = _write_day(
                    sink, channel, day, pages, prev, rng, stats, conflicts, conflict_rng
                )
                if unfinished:
                    stats.unfinished_pulls[last] = (
                        f"partial pull: page {len(pages)} has has_more=true and next_page "
                        f"{pages[-1]['next_page']} never arrived"
                    )
                prev = pages
    return stats
