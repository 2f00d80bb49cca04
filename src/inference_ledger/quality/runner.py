"""Running suites with Great Expectations 1.x, and the per-run Data Docs site.

Validation runs in an ephemeral context (nothing written, fast). Its results are then put into a
small file-backed GX project per run under `LEDGER_HOME/data_docs/<run_id>/`, whose
filesystem site is rebuilt from every result stored for the run so far: the lake suites
(ingest/aggregate) and the staging suites (publish) may run in different processes.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from inference_ledger.quality.results import CheckResult, from_validation

log = logging.getLogger(__name__)
DOCS_SITE = "ledger_run"
RESULT_FORMAT = "SUMMARY"
# On Spark, SUMMARY costs about twice the jobs of BOOLEAN_ONLY (counts and samples of the
# unexpected values), in Postgres about a third more of the staging gate's time. Every
# expectation here is a row-level one with mostly = 1 (or an unexpected-rows query), so a pass
# means 0 unexpected rows: suites run BOOLEAN_ONLY and only a suite with a failure runs again in
# SUMMARY for the counts and samples.
FAST_FORMAT = "BOOLEAN_ONLY"
# A frame of at most this many rows is validated by GX's pandas engine on its rows collected
# once (one Spark job), instead of a Spark job or two per expectation: the finance tables and the
# freshness frame on every run, and every table of a small run. A small run's lake suites (the
# generate_small 2024-Q1 lake, warm, five runs each alternated): 55 -> 20 Spark jobs, 3.96 ->
# 2.36 s, the same 33 results. The rows are checked columns only (`dq_*` derived in Spark, keys,
# currencies, counts), never money. 0: Spark for every frame.
LOCAL_MAX_ROWS = 100_000
# The expectations whose pandas and Spark implementations agree on every row, nulls included
# (both skip a null, or both count it). A column pair only when it skips a row with either
# side missing: by default pandas counts a row with one side null as unexpected, Spark does
# not. A range only on integers: Spark compares a decimal with a float bound as doubles, Python
# exactly (a rate of exactly 0.3 against a bound of 0.3 passes in Spark, fails in pandas).
LOCAL_EXPECTATIONS = frozenset(
    {
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_unique",
    }
)
INTEGRAL = frozenset({"tinyint", "smallint", "int", "bigint"})
# NaN is a null to pandas and a value to Spark: a floating column stays on Spark.
FLOATING = frozenset({"float", "double"})


@dataclass
class Suite:
    """A suite as code: its name (`lake.<table>`, `staging.<mart>`, `ingest.<what>`) and
    expectations, each carrying `meta = {"check": <config check>, "severity": ...}`."""

    name: str
    expectations: list


@dataclass
class SuiteOutcome:
    suite: object  # gx.ExpectationSuite
    key: object  # ValidationResultIdentifier
    result: object  # ExpectationSuiteValidationResult
    checks: list[CheckResult]


def quiet_gx():
    # We choose the generic SQL datasource on purpose: it accepts Unix-socket URLs.
    warnings.filterwarnings("ignore", message=".*generic SQLDatasource.*")
    # Each staging batch is a whole table, so the queries name it: GX substitutes `{batch}`
    # without an alias on some paths, which Postgres before 16 rejects.
    warnings.filterwarnings("ignore", message=".*should contain the \\{batch\\} parameter.*")
    # The Unix-socket URLs of the embedded server carry no schema; the table asset names it.
    warnings.filterwarnings("ignore", message=".*`schema_name` is deprecated.*")
    for name in (
        "great_expectations",
        "great_expectations._docs_decorators",
        "great_expectations.data_context.types.base",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def quiet_stdout():
    """GX prints (not logs) a notice for each UnexpectedRowsExpectation whose query names its
    table instead of `{batch}`, each time one is built or copied; ours do so on purpose."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def gx_module():
    quiet_gx()
    import great_expectations as gx

    quiet_gx()  # again: importing GX resets some of its loggers
    return gx


def ephemeral_context():
    gx = gx_module()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _copies(suite: Suite) -> list:
    # A GX expectation belongs to one suite object; a Suite definition may be run again.
    return [copy.copy(e) for e in suite.expectations]


def _outcomes(context, checkpoint_result, suites: dict) -> list[SuiteOutcome]:
    now = datetime.now(UTC)
    out = []
    for key, result in checkpoint_result.run_results.items():
        name = result.suite_name
        out.append(SuiteOutcome(suites[name], key, result, from_validation(name, result, now)))
    return out


def run_frame_suites(frames: list[tuple[Suite, object]]) -> list[SuiteOutcome]:
    """Each (suite, frame) through a Checkpoint on a GX dataframe asset: a Spark DataFrame in the
    caller's Spark session, on GX's Spark engine or, when its rows are few, on its pandas engine
    (`local_rows`); a pandas DataFrame (rows the driver holds) on the pandas engine."""
    import pandas as pd

    context = ephemeral_context()
    sources: dict[bool, object] = {}  # local rows? -> the datasource of their engine
    outcomes = []
    for suite_def, df in frames:
        rows = df if isinstance(df, pd.DataFrame) else local_rows(suite_def, df)
        local = rows is not None
        if local not in sources:
            sources[local] = (
                context.data_sources.add_pandas(name="lake_local")
                if local
                else context.data_sources.add_spark(name="lake")
            )
        asset = sources[local].add_dataframe_asset(name=suite_def.name)
        definition = _definition(
            context, suite_def, asset.add_batch_definition_whole_dataframe("whole")
        )
        data = {"dataframe": rows if local else df}
        outcomes += _validate(context, suite_def.name, [definition], data)
    return outcomes


def local_rows(suite: Suite, df):
    """`df`'s rows as a pandas DataFrame when they are at most LOCAL_MAX_ROWS and every
    expectation of `suite` reads them alike in pandas and Spark; else None (validate on Spark).
    Integers stay exact (a null makes an object column, not floats)."""
    types = dict(df.dtypes)
    if LOCAL_MAX_ROWS <= 0 or not all(_reads_alike(e, types) for e in suite.expectations):
        return None
    table = df.limit(LOCAL_MAX_ROWS + 1).toArrow()
    if table.num_rows > LOCAL_MAX_ROWS:
        return None
    return table.to_pandas(integer_object_nulls=True)


def _reads_alike(expectation, types: dict[str, str]) -> bool:
    columns = [getattr(expectation, n, None) for n in ("column", "column_A", "column_B")]
    if any(types.get(c) in FLOATING for c in columns if c):
        return False
    kind = expectation.expectation_type
    if kind == "expect_column_values_to_be_between":
        return types.get(expectation.column) in INTEGRAL
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        return expectation.ignore_row_if == "either_value_is_missing"
    return kind in LOCAL_EXPECTATIONS


def run_sql_suites(sqlalchemy_url: str, tables: list[tuple[Suite, str, str]]) -> list[SuiteOutcome]:
    """Each (suite, schema, table) on a whole Postgres table, all in one Checkpoint."""
    with quiet_stdout():
        context = ephemeral_context()
        source = context.data_sources.add_sql(name="ledger_db", connection_string=sqlalchemy_url)
        definitions = []
        for suite_def, schema, table in tables:
            asset = source.add_table_asset(
                name=f"{schema}.{table}", table_name=table, schema_name=schema
            )
            batch = asset.add_batch_definition_whole_table("whole")
            definitions.append(_definition(context, suite_def, batch))
        return _validate(context, "staging", definitions)


def _definition(context, suite_def: Suite, batch):
    """`suite_def` (its own copies of the expectations) on `batch`, as a validation definition."""
    gx = gx_module()
    suite = context.suites.add(
        gx.ExpectationSuite(name=suite_def.name, expectations=_copies(suite_def))
    )
    return context.validation_definitions.add(
        gx.ValidationDefinition(name=f"validate {suite_def.name}", data=batch, suite=suite)
    )


def _validate(context, name: str, definitions: list, batch_parameters=None) -> list[SuiteOutcome]:
    """The definitions through one Checkpoint in FAST_FORMAT, then the suites that failed again
    in RESULT_FORMAT for their counts and samples; one outcome per suite, in their order."""
    gx = gx_module()
    by_name = {d.suite.name: d for d in definitions}
    suites = {n: d.suite for n, d in by_name.items()}

    def run(defs: list, fmt: str) -> dict[str, SuiteOutcome]:
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"checkpoint {name} {fmt}", validation_definitions=defs, result_format=fmt
            )
        )
        result = checkpoint.run(batch_parameters=batch_parameters)
        return {o.suite.name: o for o in _outcomes(context, result, suites)}

    outcomes = run(definitions, FAST_FORMAT)
    failed = [by_name[n] for n, o in outcomes.items() if not o.result.success]
    if failed:
        outcomes.update(run(failed, RESULT_FORMAT))
    return [outcomes[n] for n in by_name]


def docs_dir(home: Path, run_id: str) -> Path:
    return Path(home) / "data_docs" / run_id


def build_data_docs(
    home: Path, run_id: str, outcomes: list[SuiteOutcome], keep_runs: int = 0
) -> Path | None:
    """Add the outcomes to the run's stored results and rebuild its Data Docs site, then
    prune older runs' sites to the newest `keep_runs` (0: keep all).

    Returns LEDGER_HOME/data_docs/<run_id>/index.html. The docs are a view of results already
    in audit.dq_results, so a failure to build them is logged, never fatal."""
    root = docs_dir(home, run_id)
    try:
        with quiet_stdout():
            _build_site(root, run_id, outcomes)
        from inference_ledger.quality.docs import prune_sites

        prune_sites(root.parent, keep_runs, run_id)
    except Exception:  # noqa: BLE001 - the gate's verdict is already recorded; docs are a view
        log.exception("building Data Docs under %s failed", root)
        return None
    index = root / "index.html"
    return index if index.exists() else None


def _named_for_run(outcome: SuiteOutcome, run_id: str) -> tuple[object, object]:
    """The outcome's key and result under the ledger run id: the Checkpoint ran without a run
    name, which GX shows as `__none__` and files under `validations/.../__none__/`."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ValidationResultIdentifier,
    )

    run = RunIdentifier(run_name=run_id, run_time=outcome.key.run_id.run_time)
    key = ValidationResultIdentifier(
        outcome.key.expectation_suite_identifier, run, outcome.key.batch_identifier
    )
    result = copy.copy(outcome.result)
    result.meta = {**(result.meta or {}), "run_id": run}
    return key, result


def _build_site(root: Path, run_id: str, outcomes: list[SuiteOutcome]) -> None:
    from inference_ledger.quality.docs import finish_site, site_config

    gx = gx_module()
    root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(root / "_gx"))
    config = site_config(root, run_id)
    if DOCS_SITE in (context.get_config().data_docs_sites or {}):
        context.update_data_docs_site(DOCS_SITE, config)  # a site built before these views
    else:
        context.add_data_docs_site(DOCS_SITE, config)
    built = []
    for o in outcomes:
        context.suites.add_or_update(
            gx.ExpectationSuite(
                name=o.suite.name, expectations=[copy.copy(e) for e in o.suite.expectations]
            )
        )
        key, result = _named_for_run(o, run_id)
        context.validation_results_store.set(key, result)
        built += [key, key.expectation_suite_identifier]
    # Only these outcomes' pages (and the index, which lists every stored result): a run's
    # gates each add theirs, and a full rebuild rendered the earlier gates' pages again.
    context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=built)
    finish_site(root)
