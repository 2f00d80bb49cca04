"""The test suite's own xdist grouping (tests/xdist_support.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import xdist_support


def _item(module: str, *fixtures: str):
    return SimpleNamespace(path=Path("tests") / module, fixturenames=list(fixtures))


def test_modules_sharing_a_baseline_share_a_scope_and_others_keep_their_own():
    scope = xdist_support.ModuleGroupScheduling._split_scope
    assert scope(None, "tests/test_dags.py::test_x") == "cli-baseline"
    assert scope(None, "tests/test_spark_cluster.py::test_y[a]") == "cli-baseline"
    assert scope(None, "tests/test_reliability_crash.py::test_z") == "reliability"
    assert scope(None, "tests/test_bad_inputs.py::test_w") == "reliability"
    assert scope(None, "tests/test_periods.py::test_v") == "test_periods.py"


def test_a_module_using_a_baseline_outside_its_group_stops_the_collection():
    xdist_support.check_groups([_item("test_dags.py", "cli_baseline", "spark")])
    with pytest.raises(pytest.UsageError, match="test_new.py uses reliability_baseline"):
        xdist_support.check_groups([_item("test_new.py", "reliability_baseline")])


def test_longest_groups_come_first_and_a_group_stays_together():
    items = [
        _item("test_periods.py"),
        _item("test_bad_inputs.py"),
        _item("test_airflow_backfill.py"),
        _item("test_reliability_crash.py"),
        _item("test_pipeline_e2e.py"),
    ]
    xdist_support.longest_first(items)
    assert [i.path.name for i in items] == [
        "test_airflow_backfill.py",
        "test_bad_inputs.py",
        "test_reliability_crash.py",
        "test_pipeline_e2e.py",
        "test_periods.py",
    ]
