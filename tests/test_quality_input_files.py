"""The input-files suite (quality/input_files.py): each file's quarantine rate against the
configured bound, on the ingest's accounting, exact."""

from __future__ import annotations

from pathlib import Path

from inference_ledger.quality import QualityConfig
from inference_ledger.quality.input_files import validate_input_files
from tests.helpers import failed

CFG = QualityConfig.load()


def test_quarantine_rate_per_file_over_the_threshold_is_a_warning():
    accounting = [
        {"source": "usage", "source_file": "a.json", "rows_read": 200, "rows_quarantined": 11},
        {"source": "usage", "source_file": "b.json", "rows_read": 100, "rows_quarantined": 5},
        {"source": "usage", "source_file": "empty.json", "rows_read": 0, "rows_quarantined": 0},
    ]
    outcomes = validate_input_files(accounting, CFG)
    assert failed(outcomes) == [
        ("ingest.input_files", "quarantine_rate", "warning", "quarantine_rate", "1")
    ]
    (check,) = outcomes[0].checks
    # 11 / 200 = 0.055 is the one over 0.05; 0.05 itself is allowed.
    assert check.details["partial_unexpected_list"] == ["0.0550000000"]


def test_quarantine_rate_bound_is_inclusive_and_exact(tmp_path):
    """The rates are exact Decimals checked on GX's pandas engine: a rate equal to the bound
    passes although float(0.3) < 0.3, one 1e-10 above it fails, and rates round half up."""
    config = tmp_path / "quality.yaml"
    config.write_text(Path(CFG.source).read_text().replace('max_rate: "0.05"', 'max_rate: "0.3"'))
    cfg = QualityConfig.load(config)
    accounting = [
        {"source": "usage", "source_file": "at.json", "rows_read": 10, "rows_quarantined": 3},
        {"source": "usage", "source_file": "third.json", "rows_read": 3, "rows_quarantined": 1},
        {
            "source": "usage",
            "source_file": "over.json",
            "rows_read": 10_000_000_000,
            "rows_quarantined": 3_000_000_001,
        },
        {
            "source": "billing",
            "source_file": "half.csv",
            "rows_read": 2 * 10**10,
            "rows_quarantined": 6 * 10**9 + 1,
        },
    ]
    (outcome,) = validate_input_files(accounting, cfg)
    assert list(outcome.checks[0].details["partial_unexpected_list"]) == [
        "0.3333333333",
        "0.3000000001",
        "0.3000000001",  # 0.30000000005 rounded half up
    ]
