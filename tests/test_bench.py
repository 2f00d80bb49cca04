"""`make bench` at its tiny size: every stage runs and is reported, the references agree with
the pipeline on what was loaded, and one more night on top of history reads only what it
touches (the finance feeds and the other month's usage files are skipped)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("ledger_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# A full benchmark run of its own (DuckDB, bare COPY, a night and one more night): slow.
pytestmark = pytest.mark.slow

# 20 history nights before 2025-09-15: 6 of them in August, which the new night leaves alone.
HISTORY_NIGHTS = 20


@pytest.fixture(scope="module")
def quick(spark, tmp_path_factory):
    """One `make bench` at its tiny size, with its incremental part (one more night on
    HISTORY_NIGHTS of history) measured against the size's first night, as `make bench` does:
    both tests read this one result (nothing writes into it)."""
    pytest.importorskip("duckdb", reason="benchmark extra: pip install -e '.[bench]'")
    tmp = tmp_path_factory.mktemp("bench")
    return _bench_module().main(
        [
            "--quick",
            "--history-nights",
            str(HISTORY_NIGHTS),
            "--work",
            str(tmp / "work"),
            "--out",
            str(tmp),
        ]
    )


def test_quick_bench_reports_every_stage(quick):
    saved = json.loads(Path(quick["path"]).read_text())
    assert saved["machine"]["cores"] >= 1 and saved["fixed_overhead"]["spark_session_start_s"] >= 0
    [size] = saved["sizes"]
    assert list(size["stages"]) == [
        "prepare (migrate, run record)",
        "ingest (all sources)",
        "  ingest.finance",
        "  ingest.billing",
        "  ingest.usage",
        "aggregate + reconcile",
        "stage COPY",
        "audit (GX)",
        "publish",
        "report",
        "reference (b): bare COPY of the staged rows",
        "reference (b'): staging path vs bare COPY, usage facts",
        "reference (a): DuckDB ingest + dedupe + aggregate",
    ]
    by_source = size["run"]["by_source"]
    # 14,000 + 6,000 results in 560 + 240 pages; 2 + 1 pages redelivered (75 results).
    assert by_source["usage"]["rows_read"] == 20_075
    assert by_source["usage"]["rows_loaded"] == 20_000
    assert by_source["usage"]["rows_deduplicated"] == 75
    assert by_source["billing.azure"]["rows_read"] == 2_000
    assert by_source["billing.azure"]["rows_loaded"] == 2_000
    # DuckDB deduplicated the same files to the same facts.
    assert size["duckdb"]["usage_facts"] == 20_000
    assert size["bare_copy"]["rows"] == sum(size["run"]["staged_rows"].values())
    assert size["bulk_copy"]["rows"] == 20_000
    # A quick night reads ~1 MB: both Spark steps run their plans interpreted (spark.py).
    assert size["run"]["codegen"] == {"ingest": False, "aggregate": False}
    # At this size the staged marts are all fixed cost: their COPY ratio may round to 0.0.
    assert all(v is not None and v >= 0 for v in size["ratios"].values())
    assert size["ratios"]["bulk_staging_rate_vs_bare_copy_rate"] > 0


def test_one_more_night_reads_only_what_it_touches(quick):
    # The incremental part of the same bench run (bench_incremental after the quick size, its
    # first night being the size's measured night), also saved with the results.
    inc = quick["incremental"]
    assert json.loads(Path(quick["path"]).read_text())["incremental"] == json.loads(
        json.dumps(inc, default=str)
    )
    assert inc["history_nights"] == 20
    by_source = inc["next_night_run"]["by_source"]
    for feed in ("fx", "prices", "contracts", "revenue", "settlements"):
        src = by_source[f"finance.{feed}"]
        assert src["files"] == src["files_skipped"] > 0 and src["rows_read"] == 0
    usage = by_source["usage"]
    # History nights: 1 file + 1 redelivery per channel (2,000 results; 1,400 + 600, 56 + 24
    # pages, 1 + 1 redelivered: 50 results). August's 6 nights are skipped; September's 14
    # history nights are read again with the new night, so that month is deduplicated whole.
    assert usage["files_skipped"] == 6 * 4
    assert usage["rows_read"] == 20_075 + 14 * 2_050
    assert usage["rows_loaded"] == 20_000 + 14 * 2_000
    # The billing month of the new night is read (a newer month-to-date run); August is not.
    assert by_source["billing.azure"]["rows_loaded"] == 2_000
    assert inc["ratio_next_vs_first"] is not None
