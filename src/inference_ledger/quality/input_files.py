"""The suite after ingest: the quarantine rate of each input file the run read, from the
ingest's accounting (one row a file, held by the driver): checked on GX's pandas engine, with
no Spark job (a cold ingest process spent ~3-5 s in its first Spark validation for ~20 rows)."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

from inference_ledger.quality.config import QualityConfig
from inference_ledger.quality.runner import Suite, SuiteOutcome, gx_module, run_frame_suites

QUARANTINE_SUITE = "ingest.input_files"
# A quarantine rate's places, as the other ratios of the project (transform.contract.ratio).
RATE_PLACES = Decimal("1E-10")


def quarantine_rates(accounting: list[dict]):
    """One row per file read (pandas): its source, rows read and quarantined, and
    quarantine_rate = rows quarantined / rows read rounded half up to 10 places (0 for an empty
    file), exact: a file list is small, so it is checked in GX's pandas engine without Spark."""
    import pandas as pd

    rows = []
    for r in accounting:
        read, quarantined = int(r["rows_read"]), int(r["rows_quarantined"])
        rate = (Decimal(quarantined) / Decimal(read) if read else Decimal(0)).quantize(
            RATE_PLACES, ROUND_HALF_UP
        )
        rows.append((str(r["source"]), str(r["source_file"]), read, quarantined, rate))
    return pd.DataFrame(
        rows, columns=["source", "source_file", "rows_read", "rows_quarantined", "quarantine_rate"]
    )


def float_at_least(bound: Decimal) -> float:
    """The smallest float not below `bound`. GX takes a range's bounds as floats and its pandas
    engine compares the exact Decimal rates with them: float(0.3) is below 0.3, so a rate of
    exactly 0.3 would fail an inclusive bound of 0.3. Past the float just above the bound, the
    next 10-place rate is far beyond it, so the check is exact."""
    value = float(bound)
    return value if Decimal(value) >= bound else math.nextafter(value, math.inf)


def quarantine_suite(cfg: QualityConfig) -> Suite:
    E = gx_module().expectations
    return Suite(
        QUARANTINE_SUITE,
        [
            E.ExpectColumnValuesToBeBetween(
                column="quarantine_rate",
                min_value=0,
                max_value=float_at_least(cfg.max_quarantine_rate),
                description="share of each input file's rows quarantined",
                meta=cfg.meta("quarantine_rate"),
            )
        ],
    )


def validate_input_files(
    accounting: list[dict], cfg: QualityConfig | None = None
) -> list[SuiteOutcome]:
    """The quarantine rate of each file this run read."""
    cfg = cfg or QualityConfig.load()
    return run_frame_suites([(quarantine_suite(cfg), quarantine_rates(accounting))])
