"""`generate_landing`: the whole sample landing folder for a range of scenario quarters."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from inference_ledger.periods import Quarter
from inference_ledger.sample.billing import BillingStats, write_billing
from inference_ledger.sample.finance import FinanceStats, write_finance
from inference_ledger.sample.scenario import SCENARIO_QUARTERS, QuarterTargets, quarter_range
from inference_ledger.sample.sink import Sink
from inference_ledger.sample.usage import UsageStats, write_usage

# The generator owns these subfolders of out_dir and nothing else.
GENERATED_DIRS = ("billing", "usage", "finance")


@dataclass(frozen=True)
class GenerationSummary:
    out_dir: Path
    seed: int
    scale: float
    quarters: list[str]
    expected: dict[str, QuarterTargets]
    files: int
    bytes: int
    # Billing: all data rows written (every run, every blob) and those in the newest run of
    # each (scope, month), which are the only ones that count.
    billing_runs: int
    billing_rows: int
    billing_rows_effective: int
    untagged_inference_lines: int  # in effective runs; classified by resource group only
    # Usage: distinct results (natural key) vs result rows written including redelivered copies.
    usage_results: int
    usage_results_written: int
    usage_pages: int
    # channel -> quarter -> distinct input + output tokens. `openai` is fixed by the scenario;
    # `azure_openai` varies with the seed: only its value at sheet prices is fixed, in
    # azure_usage_priced_usd (quarter -> within $1 of the partner's reported resale revenue).
    usage_tokens: dict[str, dict[str, int]]
    azure_usage_priced_usd: dict[str, Decimal]
    revenue_rows: int
    revenue_refunds: int
    settlement_rows: int
    # Deliberate edge cases.
    superseded_export_runs: int
    redelivered_usage_pages: int  # includes overlapping_usage_pages
    overlapping_usage_pages: int  # copies of the previous day's page in the next day's folder
    superseded_revenue_versions: int
    superseding_statements: int
    quarantinable_billing_rows: int = 0
    rejected_export_runs: int = 0
    rejected_export_rows: int = 0  # rows of rejected runs: quarantined with the run's reason
    # `usage_conflicts`: earlier partial pulls; their results that differ lose to the newest
    # pull (superseded), those that happen to match are duplicates.
    partial_usage_pulls: int = 0
    conflicting_usage_results: int = 0
    partial_pull_identical_results: int = 0
    # `statement_chains`: statements superseded by a correction that is itself superseded.
    chained_supersessions: int = 0
    # Ground truth of the settlement statements: quarter -> the receivable direction's effective
    # amount and reported basis (the rate in effect at each quarter's start applied), and the
    # contract terms written (CSV values, in file order).
    revshare_received_usd: dict[str, Decimal] = field(default_factory=dict)
    received_basis_usd: dict[str, Decimal] = field(default_factory=dict)
    contract_terms: tuple[tuple, ...] = ()
    # With `commitments`: the finance/commitments rows written (CSV values).
    commitments: tuple[tuple, ...] = ()


def generate_landing(
    out_dir: Path,
    *,
    seed: int = 7,
    scale: float = 1.0,
    start: str = "2024-Q1",
    end: str = "2025-Q3",
    billing_dialect: str = "ea",
    billing_faults: bool = False,
    billing_parquet: bool = False,
    billing_layout: str = "cost-management",
    billing_manifest: str = "2024-04-01",
    billing_ai_tokens: bool = False,
    usage_conflicts: bool = False,
    usage_newer_fields: bool = False,
    usage_unfinished_pull: bool = False,
    statement_chains: bool = False,
    contract_changes: bool = False,
    commitments: bool = False,
) -> GenerationSummary:
    """Write the sample landing data for the inclusive quarter range [start, end].

    Same (seed, scale, start, end) -> byte-identical files. Per-quarter money totals depend on
    neither seed nor scale; scale multiplies the rows (resources, projects, entries per day).
    `billing_dialect` writes the same charges as Azure EA (`ea`), MCA (`mca`) or FOCUS 1.2
    (`focus`) exports; `billing_faults` adds rows that must be quarantined and export runs
    that must be rejected, without changing any total; `billing_parquet` writes the blobs as
    Parquet (amounts as doubles, as Azure types them) instead of CSV. `billing_layout` lays the
    runs out as Cost Management does today (`cost-management`: `<root>/<export>/<YYYYMMDD-
    YYYYMMDD>/<YYYYMMDDHHMM>/<run-guid>/`, `part_<n>_0001` blobs named by their container
    path) or as older exports did (`legacy`: `<export>/<period>/<run-guid>/`, blob names
    relative); `billing_manifest` is the manifest shape (`2024-04-01` with row counts, or
    `2023-07-01-preview` with byte counts only). `billing_dialect` `focus-1.3` / `focus-1.4`
    write those FOCUS versions' columns; `billing_ai_tokens` adds Azure OpenAI token meters to
    the inference fleet (same totals, spread over more lines). `usage_newer_fields` writes the
    usage API's newer token splits and `usage_unfinished_pull` a pull whose last page never
    arrived (sample/usage.py).

    Input edge cases beyond the always-present redeliveries, restated revenue versions and
    superseding statements: `usage_conflicts` adds earlier partial pulls of some usage pages
    (same bucket keys, smaller numbers, older files); `statement_chains` makes one correction
    wrong again and superseded in turn; `contract_changes` changes the receivable rate mid-
    quarter with a second, non-overlapping term, which moves the amounts received (see
    `revshare_received_usd`) but no spend, payable or implied-revenue figure; `commitments`
    writes a cloud consumption commitment (finance/commitments) every Azure charge burns. Each
    one only adds or rewrites its own files (partial pulls; settlements; contracts and
    settlements; the commitments file): the rest stay byte-identical to a run without it.
    """
    quarters = quarter_range(start, end)
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    out_dir = _cleared(Path(out_dir))
    sink = Sink(out_dir)
    billing = write_billing(sink, quarters, seed, scale, billing_dialect, billing_faults,
                            billing_parquet, layout=billing_layout,
                            manifest_shape=billing_manifest, ai_tokens=billing_ai_tokens)  # fmt: skip
    usage = write_usage(sink, quarters, seed, scale, usage_conflicts,
                        newer_fields=usage_newer_fields, unfinished_pull=usage_unfinished_pull)  # fmt: skip
    finance = write_finance(sink, quarters, seed, scale, statement_chains=statement_chains,
                            contract_changes=contract_changes, commitments=commitments)  # fmt: skip
    return _summary(out_dir, seed, scale, quarters, sink, billing, usage, finance)


def _cleared(out_dir: Path) -> Path:
    """out_dir, created if missing, without the folders the generator owns (GENERATED_DIRS)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in GENERATED_DIRS:
        shutil.rmtree(out_dir / name, ignore_errors=True)
    return out_dir


def _summary(
    out_dir: Path,
    seed: int,
    scale: float,
    quarters: list[Quarter],
    sink: Sink,
    billing: BillingStats,
    usage: UsageStats,
    finance: FinanceStats,
) -> GenerationSummary:
    """What was written, from the three writers' statistics."""
    labels = [q.label for q in quarters]
    return GenerationSummary(
        out_dir=out_dir,
        seed=seed,
        scale=scale,
        quarters=labels,
        expected={label: SCENARIO_QUARTERS[label] for label in labels},
        files=sink.files,
        bytes=sink.bytes,
        billing_runs=billing.runs,
        billing_rows=billing.rows,
        billing_rows_effective=billing.rows_effective,
        untagged_inference_lines=billing.untagged_inference_lines,
        usage_results=usage.results_unique,
        usage_results_written=usage.results_written,
        usage_pages=usage.pages_written,
        usage_tokens=usage.tokens,
        azure_usage_priced_usd=usage.azure_priced_usd,
        revenue_rows=finance.revenue_rows,
        revenue_refunds=finance.revenue_refunds,
        settlement_rows=finance.settlement_rows,
        superseded_export_runs=billing.superseded_runs,
        redelivered_usage_pages=usage.redelivered_pages,
        overlapping_usage_pages=usage.overlapping_pages,
        superseded_revenue_versions=finance.superseded_revenue_versions,
        superseding_statements=finance.superseding_statements,
        quarantinable_billing_rows=billing.quarantinable_rows,
        rejected_export_runs=billing.rejected_runs,
        rejected_export_rows=billing.rejected_rows,
        partial_usage_pulls=usage.partial_pull_pages,
        conflicting_usage_results=usage.conflicting_results,
        partial_pull_identical_results=usage.partial_pull_identical_results,
        chained_supersessions=finance.chained_supersessions,
        revshare_received_usd=finance.received_usd,
        received_basis_usd=finance.received_basis_usd,
        contract_terms=finance.contract_rows,
        commitments=finance.commitment_rows,
    )
