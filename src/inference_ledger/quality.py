"""Data-quality gate: a Great Expectations suite per staged mart, run before publish.

Severity `critical` blocks the publish; `warning` is recorded and published anyway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from inference_ledger import contracts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    suite: str
    expectation: str
    column_name: str | None
    severity: str
    success: bool
    observed_value: str
    details: dict


class QualityGateFailed(RuntimeError):
    def __init__(self, failures: list[CheckResult]):
        self.failures = failures
        names = "; ".join(
            f"{f.suite}: {f.expectation}({f.column_name or ''}) observed {f.observed_value}"
            for f in failures
        )
        super().__init__(f"data-quality gate failed, nothing published: {names}")


def _quiet_gx():
    import warnings

    # We choose the generic SQL datasource on purpose: it accepts Unix-socket URLs.
    warnings.filterwarnings("ignore", message=".*generic SQLDatasource.*")
    # Each batch is a whole staging table, so the queries name it: GX substitutes `{batch}`
    # without an alias on some paths, which Postgres before 16 rejects.
    warnings.filterwarnings("ignore", message=".*should contain the \\{batch\\} parameter.*")
    for name in (
        "great_expectations",
        "great_expectations._docs_decorators",
        "great_expectations.data_context.types.base",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)


def _expectations(mart: str, gx):
    """The suite of one staged mart, built from its contract."""
    E = gx.expectations
    cols = contracts.columns("marts", mart)
    key = contracts.primary_key(mart)
    exps = []
    for c in cols:
        if not c.nullable:
            exps.append(
                E.ExpectColumnValuesToNotBeNull(column=c.name, meta={"severity": "critical"})
            )
    if len(key) == 1:
        exps.append(E.ExpectColumnValuesToBeUnique(column=key[0], meta={"severity": "critical"}))
    else:
        exps.append(
            E.ExpectCompoundColumnsToBeUnique(column_list=key, meta={"severity": "critical"})
        )
    exps.append(E.ExpectTableRowCountToBeBetween(min_value=0, meta={"severity": "warning"}))
    if mart == "inference_spend_daily":
        exps.append(
            E.UnexpectedRowsExpectation(
                description="control totals: staged billed cost per month equals the lake's",
                unexpected_rows_query="""
                    WITH staged AS (
                        SELECT to_char(usage_date, 'YYYY-MM') AS period_label,
                               sum(billed_cost_usd) AS amount
                        FROM staging.inference_spend_daily GROUP BY 1
                    ), lake AS (
                        SELECT period_label, amount FROM staging.control_totals
                        WHERE table_name = 'inference_spend_daily'
                    )
                    SELECT coalesce(l.period_label, s.period_label) AS period_label,
                           l.amount AS lake_amount, s.amount AS staged_amount
                    FROM lake l FULL JOIN staged s USING (period_label)
                    WHERE l.amount IS DISTINCT FROM s.amount
                """,
                meta={"severity": "critical", "column": "billed_cost_usd"},
            )
        )
    if mart == "revshare_reconciliation":
        exps.append(
            E.UnexpectedRowsExpectation(
                description="reconciliation arithmetic: variance = settled - expected",
                unexpected_rows_query="""
                    SELECT * FROM staging.revshare_reconciliation
                    WHERE settled_usd IS NOT NULL
                      AND variance_usd IS DISTINCT FROM settled_usd - coalesce(expected_usd, 0)
                """,
                meta={"severity": "critical", "column": "variance_usd"},
            )
        )
        exps.append(
            E.ExpectColumnValuesToBeInSet(
                column="status",
                value_set=[
                    "matched",
                    "underpaid",
                    "overpaid",
                    "missing_settlement",
                    "unexpected_settlement",
                    "pending",
                ],
                meta={"severity": "critical"},
            )
        )
        exps.append(
            E.ExpectColumnValuesToBeInSet(
                column="status",
                value_set=["matched", "pending"],
                mostly=1.0,
                meta={"severity": "warning"},
            )
        )
    return exps


def validate_staging(sqlalchemy_url: str, marts: list[str]) -> list[CheckResult]:
    """Run each mart's suite on its staging table; return every expectation's result."""
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    _quiet_gx()  # again: importing GX resets some of its loggers

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_sql(name="ledger_staging", connection_string=sqlalchemy_url)
    results: list[CheckResult] = []
    for mart in marts:
        asset = source.add_table_asset(name=mart, table_name=mart, schema_name="staging")
        batch = asset.add_batch_definition_whole_table(f"{mart}_all")
        suite = context.suites.add(gx.ExpectationSuite(name=f"staging.{mart}"))
        for exp in _expectations(mart, gx):
            suite.add_expectation(exp)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"validate_{mart}", data=batch, suite=suite)
        )
        outcome = definition.run()
        for r in outcome.results:
            cfg = r.expectation_config
            meta = cfg.meta or {}
            kwargs = cfg.kwargs or {}
            res = r.result or {}
            errors = _exception_messages(r.exception_info)
            observed = res.get("observed_value")
            if observed is None:
                observed = res.get("unexpected_count")
            if errors:
                observed = "error: " + errors[0].splitlines()[0]
            results.append(
                CheckResult(
                    suite=suite.name,
                    expectation=cfg.type,
                    column_name=kwargs.get("column")
                    or meta.get("column")
                    or ",".join(kwargs.get("column_list") or [])
                    or None,
                    severity=meta.get("severity", "critical"),
                    success=bool(r.success),
                    observed_value=str(observed),
                    details={
                        "description": cfg.description,
                        "unexpected_count": res.get("unexpected_count"),
                        "partial_unexpected_list": [
                            str(x) for x in (res.get("partial_unexpected_list") or [])[:5]
                        ],
                        "exceptions": errors,
                    },
                )
            )
    return results


def _exception_messages(info) -> list[str]:
    """GX 1.x reports errors either flat or keyed by the metric that raised them."""
    if not isinstance(info, dict):
        return []
    if info.get("raised_exception"):
        return [str(info.get("exception_message"))]
    return [
        str(v.get("exception_message"))
        for v in info.values()
        if isinstance(v, dict) and v.get("raised_exception")
    ]


def critical_failures(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.severity == "critical" and not r.success]
