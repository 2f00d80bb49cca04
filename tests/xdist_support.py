"""How `make test` spreads the suite over two pytest-xdist workers.

Each worker is a test session of its own: its own Spark JVM, embedded Postgres and session
fixtures. A module's tests run on one worker (its module fixtures are built once), and the
modules that use one of the costly session fixtures (SHARED_BASELINES: a pipeline run, or
`airflow db migrate`) run on the same worker, so that fixture is built once as well.

xdist's own `--dist loadgroup` reads `xdist_group` marks by appending the group to each node
id, which pytest 9.2's structured node ids no longer take (pytest-xdist#1386: the marks are
silently ignored and every test is scheduled alone). So the groups are decided here, from the
module of each node id, by a scheduler of our own (`pytest_xdist_make_scheduler` in
conftest.py), and `check_groups` fails the collection when a module uses a shared fixture
without being in that fixture's group.
"""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadScopeScheduling

SHARED_BASELINES = {
    "reliability_baseline": "reliability",
    "cli_baseline": "cli-baseline",
    "airflow_metadata": "cli-baseline",
}

# Module file -> group, for the modules that share a session fixture of SHARED_BASELINES.
GROUPS = {
    "test_bad_inputs.py": "reliability",
    "test_reliability_crash.py": "reliability",
    "test_airflow_backfill.py": "cli-baseline",
    "test_cli_options.py": "cli-baseline",
    "test_dags.py": "cli-baseline",
    "test_spark_cluster.py": "cli-baseline",
}

# The longest groups of a full run (--durations=0, 2 cores, at be3729a: seconds with their
# fixtures), longest first; the rest follow in collection order. xdist hands groups out in
# this order, so no long group starts last while the other worker idles. A stale list costs
# balance between the workers, never a test.
LONGEST_FIRST = (
    "cli-baseline",  # Airflow DAGs 183 s, backfill 172 s, Spark cluster 110 s, CLI options 20 s
    "reliability",  # crash kill points 205 s, bad inputs 105 s
    "test_pipeline_e2e.py",  # 105 s
    "test_reliability_idempotency.py",  # 96 s
    "test_close.py",  # 85 s
    "test_demo.py",  # 65 s
    "test_bench.py",  # 60 s
    "test_reliability_concurrency.py",  # 54 s
    "test_run_store.py",  # 47 s
)


def group_of(module: str) -> str:
    return GROUPS.get(module, module)


def check_groups(items) -> None:
    """Every module that uses a shared session fixture is in that fixture's group."""
    misplaced = sorted(
        {
            f"{item.path.name} uses {fixture}: add it to GROUPS as {group!r}"
            for item in items
            for fixture, group in SHARED_BASELINES.items()
            if fixture in item.fixturenames and group_of(item.path.name) != group
        }
    )
    if misplaced:
        raise pytest.UsageError("tests/xdist_support.py: " + "; ".join(misplaced))


def longest_first(items) -> None:
    """Sort `items` (in place) group by group, the LONGEST_FIRST groups first."""
    rank = {group: n for n, group in enumerate(LONGEST_FIRST)}
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        first.setdefault(group_of(item.path.name), index)

    def key(item):
        group = group_of(item.path.name)
        return rank.get(group, len(rank)), first[group]

    items.sort(key=key)


class ModuleGroupScheduling(LoadScopeScheduling):
    """A load-scope scheduler whose scope is the group of a node id's module."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid.split("::", 1)[0].rsplit("/", 1)[-1])
