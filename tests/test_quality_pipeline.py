"""The gate in a whole run: a usage page with an impossible token count reaches the lake (ingest
has no bound), the lake suite stops the run before publish, the marts stay as they were; the
same page's other, quarantined row is a quarantine-rate warning that does not stop the run."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from inference_ledger.pipeline import run_pipeline
from inference_ledger.quality import QualityGateFailed
from inference_ledger.settings import load_settings
from tests.test_pipeline_e2e import marts_hash
from tests.test_quality_publish import batch, conn, publish_batch, quality_env  # noqa: F401

# End to end: a pipeline run stopped by the lake's quality gate.
pytestmark = pytest.mark.slow


def result(project: str, input_tokens: int, cached: int) -> dict:
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": input_tokens,
        "output_tokens": 10,
        "input_cached_tokens": cached,
        "num_model_requests": 1,
        "project_id": project,
        "user_id": None,
        "api_key_id": None,
        "model": "gpt-4o",
        "batch": False,
        "service_tier": "default",
    }


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    # Only the page: the run ingests it alone (the other feeds have no files), which keeps
    # the test cheap.
    out = tmp_path_factory.mktemp("quality_landing")
    start = int(datetime(2024, 3, 15, tzinfo=UTC).timestamp())
    page = {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": start,
                "end_time": start + 86400,
                "results": [
                    result("proj_quality_huge", 2 * 10**15, 0),
                    result("proj_quality_cached", 10, 11),
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    folder = out / "usage" / "openai" / "2024-03-15"
    folder.mkdir(parents=True)
    (folder / "page-quality.json").write_text(json.dumps(page))
    return out, folder / "page-quality.json"


def test_lake_violation_fails_the_run_before_publish(spark, quality_env, conn, batch, landing):  # noqa: F811
    folder, page = landing
    publish_batch(spark, quality_env, batch)  # marts with something in them to keep
    before = marts_hash(conn)
    assert before["quarterly_summary"][1] == 1
    with pytest.raises(QualityGateFailed, match="lake.usage_facts: token_bounds ") as failure:
        run_pipeline(folder, as_of=date(2024, 4, 2))
    assert [
        (f.suite, f.check_name, f.column_name, f.observed_value) for f in failure.value.failures
    ] == [("lake.usage_facts", "token_bounds", "dq_tokens_out_of_bounds", "1")]
    assert marts_hash(conn) == before
    with conn.cursor() as cur:
        cur.execute(
            "SELECT run_id, status, error FROM audit.runs WHERE command = 'run'"
            " ORDER BY started_at DESC LIMIT 1"
        )
        run_id, status, error = cur.fetchone()
        assert status == "failed" and "lake.usage_facts: token_bounds" in error
        cur.execute(
            "SELECT suite, check_name, severity, observed_value, details->>'partial_unexpected_list'"
            " FROM audit.dq_results WHERE run_id = %s AND NOT success"
            " AND (severity = 'critical' OR suite = 'ingest.input_files') ORDER BY suite",
            (run_id,),
        )
        assert cur.fetchall() == [
            ("ingest.input_files", "quarantine_rate", "warning", "1", '["0.5000000000"]'),
            (
                "lake.usage_facts",
                "token_bounds",
                "critical",
                "1",
                '["input_tokens=2000000000000000"]',
            ),
        ]
        cur.execute(
            "SELECT count(*) FROM audit.dq_results WHERE run_id = %s AND suite LIKE 'staging.%%'",
            (run_id,),
        )
        assert cur.fetchone() == (0,)  # publish never started
        cur.execute(
            "SELECT rows_read, rows_loaded, rows_quarantined FROM audit.input_files"
            " WHERE run_id = %s AND path = %s",
            (run_id, str(page)),
        )
        assert cur.fetchone() == (2, 1, 1)
    # The run renders its Data Docs once (`flush_docs`); stopped by the lake gate, it renders
    # them then: the lake gate's results and the input files gate's, which passed before it.
    site = load_settings().home / "data_docs" / run_id
    assert "lake.usage_facts" in (site / "index.html").read_text()
    pages = {p.relative_to(site).parts[1:3] for p in site.glob("validations/**/*.html")}
    assert {("ingest", "input_files"), ("lake", "usage_facts")} <= pages
