"""One night through the real pipeline, stage by stage: what `ledger run --start NIGHT --end
NIGHT+1` does (as the nightly DAG runs it), timed per step, and what the night read and loaded.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from measure import Stages


def run_night(stages: Stages, landing: Path, night: date, *, report_dir: Path | None) -> dict:
    """What `ledger run --start NIGHT --end NIGHT+1` does (as the nightly DAG runs it), step by
    step through the real pipeline functions. The data-quality gates run inside the steps;
    their time is measured around them and reported as `audit (GX)`, apart from the step."""
    ctx, url, accounting, counts, outcome = night_steps(stages, landing, night, report_dir)
    return _figures(ctx, url, accounting, counts, outcome)


def night_steps(stages: Stages, landing: Path, night: date, report_dir: Path | None) -> tuple:
    """The night's steps, each timed as a stage of `stages`: every call into `pipeline` and
    `steps` is here, in the order a run makes them. Returns (ctx, url, the ingest accounting,
    the mart row counts, the publish outcome)."""
    from inference_ledger.db import connection
    from inference_ledger.periods import quarter_labels
    from inference_ledger.pipeline import prepare
    from inference_ledger.steps.aggregate import AggregateStep
    from inference_ledger.steps.ingest import IngestStep
    from inference_ledger.steps.publish import PublishStep

    with stages.stage("prepare (migrate, run record)"):
        run = prepare(landing, night, night + timedelta(days=1), "bench", night)
    ctx, url = run.ctx, run.url
    with stages.stage("ingest (all sources)") as info:
        accounting = IngestStep().run(run)
        info["rows"] = sum(int(r["rows_read"]) for r in accounting)
    _add_ingest_by_source(stages, ctx, accounting)
    with stages.stage("aggregate + reconcile") as info:
        counts = AggregateStep().run(run).counts
        info["rows"] = sum(counts.values())
    with stages.stage("publish") as info:
        outcome = PublishStep().run(run)
        info["rows"] = sum(outcome.rows.values())
    # The gates and the staging COPY time themselves on the run's clock (ctx.timings).
    spent = {
        "input_files_gate": ctx.timings.get("gate.input_files_gate", 0.0),
        "lake_gate": ctx.timings.get("gate.lake_gate", 0.0),
        "staging_gate": ctx.timings.get("gate.staging_gate", 0.0),
        "stage": ctx.timings.get("publish.stage", 0.0),
    }
    run.store.finish()
    _move_gate_time_to_audit(stages, spent, outcome.rows)
    if report_dir is not None:
        from inference_ledger.report import write_reports

        labels = quarter_labels(*run.store.range())
        with connection(url) as conn, stages.stage("report"):
            write_reports(conn, report_dir, labels)
    return ctx, url, accounting, counts, outcome


def _add_ingest_by_source(stages: Stages, ctx, accounting: list[dict]) -> None:
    """Split of the ingest step by source, as steps.ingest timed it (ctx.timings)."""
    by_source: dict[str, int] = {}
    for r in accounting:
        key = r["source"].split(".")[0]
        by_source[key] = by_source.get(key, 0) + int(r["rows_read"])
    for name, seconds in dict(ctx.timings).items():
        if name.startswith("ingest."):
            stages.add(f"  {name}", seconds, by_source.get(name.split(".", 1)[1]))


def _move_gate_time_to_audit(stages: Stages, spent: dict[str, float], staged: dict) -> None:
    """`stage COPY` and `audit (GX)` as stages of their own, their seconds taken out of the
    ingest, aggregate and publish stages they ran in."""
    ingest_gate = spent["input_files_gate"]
    # The gates ran inside the steps: move their seconds to `audit (GX)`.
    audit_s = sum(spent.get(k, 0.0) for k in ("input_files_gate", "lake_gate", "staging_gate"))
    rows = stages.rows
    for step, part in (
        ("ingest (all sources)", ingest_gate),
        ("aggregate + reconcile", spent.get("lake_gate", 0.0)),
        ("publish", spent.get("staging_gate", 0.0) + spent.get("stage", 0.0)),
    ):
        s = rows[step]
        s["seconds"] = round(s["seconds"] - part, 3)
        s["rows_per_s"] = round(s["rows"] / s["seconds"]) if s["rows"] and s["seconds"] else None
    publish_row = rows.pop("publish")
    stages.add("stage COPY", spent.get("stage", 0.0), sum(staged.values()))
    rows["stage COPY"].update({k: v for k, v in publish_row.items() if k.startswith("peak")})
    stages.add("audit (GX)", audit_s, sum(staged.values()))
    rows["audit (GX)"]["gates_s"] = {
        k: round(spent.get(k, 0.0), 3) for k in ("input_files_gate", "lake_gate", "staging_gate")
    }
    rows["audit (GX)"].update({k: v for k, v in publish_row.items() if k.startswith("peak")})
    rows["publish"] = publish_row


def _figures(ctx, url: str, accounting: list[dict], counts: dict, outcome) -> dict:
    """What the night read, loaded, quarantined, superseded and deduplicated, per source and
    in all; the mart and staged rows; the quality checks; the database URL."""
    staged = outcome.rows
    total = lambda k: sum(int(r[k]) for r in accounting)  # noqa: E731
    outcomes = ("rows_read", "rows_loaded", "rows_quarantined", "rows_superseded")
    per_source: dict[str, dict[str, int]] = {}
    for r in accounting:
        acc = per_source.setdefault(r["source"], {"files": 0, "files_skipped": 0})
        acc["files"] += 1
        acc["files_skipped"] += int(bool(r.get("is_skipped")))
        for k in (*outcomes, "rows_deduplicated"):
            acc[k] = acc.get(k, 0) + int(r[k])
    return {
        "by_source": per_source,
        "run_id": ctx.run_id,
        "files": len(accounting),
        "rows_read": total("rows_read"),
        "rows_loaded": total("rows_loaded"),
        "rows_quarantined": total("rows_quarantined"),
        "rows_superseded": total("rows_superseded"),
        "rows_deduplicated": total("rows_deduplicated"),
        "mart_rows": counts,
        "staged_rows": staged,
        "dq_checks": outcome.checks,
        # Step -> whether Spark compiled its plans (LEDGER_SPARK_CODEGEN, decided per step).
        "codegen": dict(ctx.codegen),
        "url": url,
    }
