"""A shim for an Airflow bug that breaks `airflow dags test` of a DAG with a DeadlineAlert.

The bug (https://github.com/apache/airflow/issues/73428; fix proposed in
https://github.com/apache/airflow/pull/73430, not released as of Airflow 3.3.2): `DAG.test()`,
which `airflow dags test` calls, builds its "scheduler DAG" by serializing and deserializing the
DAG in memory. That leaves `dag.deadline` holding the alerts' encoded definitions (dicts),
where the scheduler's DAG, read from the `serialized_dag` table, holds the ids of their
`deadline_alert` rows. When the run succeeds, `DagRun.update_state()` looks every entry up with
`DeadlineAlert.get_by_id()`, which crashes on a dict (`'dict' object has no attribute 'hex'`
on a SQLite metadata database, `can't adapt type 'dict'` on Postgres) *before the run's new
state is committed*: the command exits 1 and the DAG run stays `running`.
The scheduler, the UI and `airflow backfill` are not affected.

The shim, `fix_dags_test(dag)`, is applied by the DAG files at parse time, to DAGs that have a
deadline and only when the installed Airflow is one of the affected versions
(`AFFECTED_VERSIONS`). It replaces that DAG's `test` (an attribute of the instance; the class,
other DAGs and the serialized DAG the scheduler runs are untouched) with one that, for the
duration of the call, lets `DeadlineAlert.get_by_id()` accept an encoded definition and return
the (unsaved) `DeadlineAlert` row it stands for, exactly what the upstream fix does: the run's
deadlines are then pruned like the scheduler prunes them. Ids go to the original method.

When Airflow is upgraded: if the new version has the fix, drop this module; if not, widen
`AFFECTED_VERSIONS` (tests/test_dags.py runs `airflow dags test ledger_nightly` and fails if the
bug is back unshimmed).
"""

from __future__ import annotations

import contextlib
import re
import types
from collections.abc import Iterator
from typing import Any

# apache-airflow-core versions (inclusive) whose DagRun.update_state() looks dag.deadline up by
# id while DAG.test() leaves definitions there: reported on 3.3.1 and 3.3.2 (this project pins
# 3.3.2); the `deadline_alert` table those ids point into came with 3.2.0.
AFFECTED_VERSIONS = ((3, 2, 0), (3, 3, 2))
UPSTREAM_ISSUE = "https://github.com/apache/airflow/issues/73428"


def version_tuple(version: str) -> tuple[int, int, int]:
    """(major, minor, micro) of a version string: "3.3.2", "3.3.2rc1", "3.4.0.dev0"."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        raise ValueError(f"not a version: {version!r}")
    major, minor, micro = match.groups()
    return int(major), int(minor), int(micro or 0)


def is_affected(version: str) -> bool:
    """Whether Airflow `version` has the `dags test` deadline bug (see the module docstring)."""
    low, high = AFFECTED_VERSIONS
    return low <= version_tuple(version) <= high


def fix_dags_test(dag: Any, version: str | None = None) -> Any:
    """`dag`, its `test` (what `airflow dags test` calls) shimmed when it has a deadline and the
    installed Airflow (or `version`) is affected; otherwise `dag` unchanged. Cheap: what it
    imports at parse time is Airflow's top package, which the DAG file has imported already."""
    if not getattr(dag, "deadline", None):
        return dag
    if version is None:
        import airflow

        version = airflow.__version__
    if not is_affected(version):
        return dag
    # A bound method in the instance's __dict__: found before the class' `test`, and rebound to
    # the copy when Airflow deep-copies the DAG (DAG.__deepcopy__ copies __dict__).
    dag.test = types.MethodType(_test_with_encoded_deadlines, dag)
    return dag


def _test_with_encoded_deadlines(dag: Any, *args: Any, **kwargs: Any) -> Any:
    """`DAG.test()` with `DeadlineAlert.get_by_id()` accepting encoded definitions."""
    with deadline_lookup_accepts_definitions():
        return type(dag).test(dag, *args, **kwargs)


@contextlib.contextmanager
def deadline_lookup_accepts_definitions() -> Iterator[None]:
    """While inside: `DeadlineAlert.get_by_id(definition)` returns an unsaved `DeadlineAlert`
    row made from the encoded definition, as `SerializedDagModel` would have stored it; an id
    goes to the original `get_by_id`."""
    from airflow.models.deadline_alert import DeadlineAlert
    from airflow.serialization.definitions.deadline import DeadlineAlertFields as Fields
    from airflow.serialization.enums import Encoding

    original = DeadlineAlert.__dict__["get_by_id"]  # the classmethod object itself

    def get_by_id(cls: type[DeadlineAlert], deadline_alert_id: Any, **kwargs: Any) -> Any:
        if isinstance(deadline_alert_id, dict):
            data = deadline_alert_id.get(Encoding.VAR, deadline_alert_id)
            return cls(
                name=data.get(Fields.NAME),
                reference=data[Fields.REFERENCE],
                interval=data[Fields.INTERVAL],
                callback_def=data[Fields.CALLBACK],
            )
        return original.__get__(None, cls)(deadline_alert_id, **kwargs)

    DeadlineAlert.get_by_id = classmethod(get_by_id)
    try:
        yield
    finally:
        DeadlineAlert.get_by_id = original
