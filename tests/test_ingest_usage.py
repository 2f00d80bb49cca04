"""Usage pages on tiny hand-built landing folders: audio tokens, exact values per rule."""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path

from pyspark.sql import functions as F

from inference_ledger import lake
from inference_ledger.ingest import records as R
from inference_ledger.ingest import usage
from inference_ledger.run.context import RunContext
from inference_ledger.steps.ingest import ingest_landing
from tests.helpers import full_plan

DAY = 1704153600  # 2024-01-02T00:00:00Z


def _page(results, start=DAY):
    bucket = {"object": "bucket", "start_time": start, "end_time": start + 86400}
    return {"object": "page", "data": [{**bucket, "results": results}], "has_more": False}


def _result(project, inp=100, out=10, audio=None, **extra):
    r = {
        "object": "organization.usage.completions.result",
        "input_tokens": inp,
        "output_tokens": out,
        "input_cached_tokens": 0,
        "num_model_requests": 2,
        "project_id": project,
        "model": "gpt-4o",
        "batch": False,
        "service_tier": "default",
    }
    if audio is not None:
        r["input_audio_tokens"], r["output_audio_tokens"] = audio
    return {**r, **extra}


def test_audio_tokens_are_kept_and_negative_audio_is_quarantined(spark, tmp_path):
    day = tmp_path / "usage" / "azure_openai" / "2024-01-02"
    day.mkdir(parents=True)
    first = _page(
        [
            _result("with-audio", audio=(30, 7)),
            _result("no-audio-fields"),
            _result("null-audio", input_audio_tokens=None, output_audio_tokens=None),
            _result("bad-in", audio=(-5, 0)),
            _result("bad-out", audio=(0, -1)),
            _result("audio-restated", audio=(40, 4)),
        ]
    )
    (day / "page-0001.json").write_text(json.dumps(first))
    # A newer pull differing only in audio tokens: audio is part of the numbers compared.
    newer = _page([_result("audio-restated", audio=(50, 5)), _result("with-audio", audio=(30, 7))])
    (day / "page-0002.json").write_text(json.dumps(newer))
    os.utime(day / "page-0001.json", (1_900_000_000, 1_900_000_000))
    os.utime(day / "page-0002.json", (2_000_000_000, 2_000_000_000))

    records = usage.usage_records(usage.read_pages(spark, usage.usage_files(tmp_path))).persist()
    rows = sorted(
        (
            r["project_id"],
            r["status"],
            r["input_audio_tokens"],
            r["output_audio_tokens"],
            r["field"],
            r["reason"],
            r["source_file"].rsplit("/", 1)[1],
        )
        for r in records.collect()
    )
    assert rows == [
        ("audio-restated", "loaded", 50, 5, None, None, "page-0002.json"),
        (
            "audio-restated",
            "superseded",
            40,
            4,
            None,
            "conflicting redelivery; the newest pull wins",
            "page-0001.json",
        ),
        (
            "bad-in",
            "quarantined",
            -5,
            0,
            "input_audio_tokens",
            "input_audio_tokens is negative",
            "page-0001.json",
        ),
        (
            "bad-out",
            "quarantined",
            0,
            -1,
            "output_audio_tokens",
            "output_audio_tokens is negative",
            "page-0001.json",
        ),
        ("no-audio-fields", "loaded", 0, 0, None, None, "page-0001.json"),
        ("null-audio", "loaded", 0, 0, None, None, "page-0001.json"),
        (
            "with-audio",
            "deduplicated",
            30,
            7,
            None,
            "redelivered bucket result (same natural key and numbers)",
            "page-0001.json",
        ),
        ("with-audio", "loaded", 30, 7, None, None, "page-0002.json"),
    ]
    counts = {
        r["source_file"].rsplit("/", 1)[1]: r.asDict() for r in R.file_counts(records).collect()
    }
    assert {
        f: (c["rows_read"], c["rows_loaded"], c["rows_deduplicated"], c["rows_superseded"],
            c["rows_quarantined"])
        for f, c in counts.items()
    } == {"page-0001.json": (6, 2, 1, 1, 2), "page-0002.json": (2, 2, 0, 0, 0)}  # fmt: skip

    # The lake keeps the audio columns (usage_facts contract), with the text tokens unchanged.
    lake.write_table(records.filter(records.status == R.LOADED), tmp_path / "lake", "usage_facts")
    facts = lake.read_table(spark, tmp_path / "lake", "usage_facts")
    got = sorted(
        (r["project_id"], r["usage_date"], r["input_tokens"], r["input_audio_tokens"],
         r["output_audio_tokens"])
        for r in facts.collect()
    )  # fmt: skip
    d = date(2024, 1, 2)
    assert got == [
        ("audio-restated", d, 100, 50, 5),
        ("no-audio-fields", d, 100, 0, 0),
        ("null-audio", d, 100, 0, 0),
        ("with-audio", d, 100, 30, 7),
    ]
    records.unpersist()


def _split(project, **fields):
    """A newer-pull result: 1000 input tokens (600 uncached + 300 cached + 100 written to the
    cache), 200 output tokens, split by modality."""
    r = _result(project, inp=1000, out=200, audio=(40, 40))
    r.update(
        input_cached_tokens=300,
        input_uncached_tokens=600,
        input_cache_write_tokens=100,
        input_text_tokens=500,
        input_image_tokens=60,
        input_cached_text_tokens=250,
        input_cached_image_tokens=20,
        input_cached_audio_tokens=30,
        output_text_tokens=150,
        output_image_tokens=10,
    )
    return {**r, **fields}


NEWER = [
    "input_uncached_tokens",
    "input_cache_write_tokens",
    "input_cache_write_12h_tokens",
    "input_text_tokens",
    "input_image_tokens",
    "input_uncached_audio_tokens",
    "input_cached_text_tokens",
    "input_cached_image_tokens",
    "input_cached_audio_tokens",
    "output_text_tokens",
    "output_image_tokens",
]


def _records(spark, landing):
    return usage.usage_records(usage.read_pages(spark, usage.usage_files(landing))).persist()


def test_newer_fields_are_kept_and_audio_means_the_same_in_old_and_new_pulls(spark, tmp_path):
    day = tmp_path / "usage" / "openai" / "2024-01-02"
    day.mkdir(parents=True)
    page = _page(
        [
            # Pre-split: input_audio_tokens includes cached audio; the split is unknown (NULL).
            _result("old", inp=100, out=10, audio=(30, 7), input_cached_tokens=20),
            # Split: input_audio_tokens is uncached audio (40); cached audio (30) is added.
            _split("new"),
            # One modality field is enough to read input_audio_tokens as uncached only.
            _result("sparse", audio=(10, 0), input_cached_tokens=5, input_cached_audio_tokens=5),
            # A cache-write field alone says nothing about audio: the old meaning stays.
            _result("write-only", audio=(8, 0), input_cache_write_tokens=10),
            _split("nulls", input_cache_write_12h_tokens=None, output_image_tokens=None),
        ]
    )
    (day / "page-0001.json").write_text(json.dumps(page))
    records = _records(spark, tmp_path)
    statuses = {(r["project_id"], r["status"], r["reason"]) for r in records.collect()}
    assert statuses == {
        (p, "loaded", None) for p in ("old", "new", "sparse", "write-only", "nulls")
    }
    lake.write_table(records, tmp_path / "lake", "usage_facts")
    facts = lake.read_table(spark, tmp_path / "lake", "usage_facts")
    cols = ["input_tokens", "input_cached_tokens", "output_tokens", "input_audio_tokens",
            "output_audio_tokens", *NEWER]  # fmt: skip
    got = {r["project_id"]: tuple(r[c] for c in cols) for r in facts.collect()}
    n = None
    assert got == {
        "old": (100, 20, 10, 30, 7, n, n, n, n, n, n, n, n, n, n, n),
        "new": (1000, 300, 200, 70, 40, 600, 100, n, 500, 60, 40, 250, 20, 30, 150, 10),
        "sparse": (100, 5, 10, 15, 0, n, n, n, n, n, 10, n, n, 5, n, n),
        "write-only": (100, 0, 10, 8, 0, n, 10, n, n, n, n, n, n, n, n, n),
        "nulls": (1000, 300, 200, 70, 40, 600, 100, n, 500, 60, 40, 250, 20, 30, 150, n),
    }
    records.unpersist()


def test_newer_fields_negative_or_exceeding_their_total_are_quarantined(spark, tmp_path):
    day = tmp_path / "usage" / "openai" / "2024-01-02"
    day.mkdir(parents=True)
    page = _page(
        [
            _split("neg-image", input_cached_image_tokens=-1),
            _split("neg-write", input_cache_write_12h_tokens=-3),
            _split("neg-out-text", output_text_tokens=-2),
            # 600 uncached + 300 cached + 100 + 1 written > 1000 input.
            _split("over-input", input_cache_write_12h_tokens=1),
            # Without input_uncached_tokens the uncached parts (500 + 60 + 41) count instead.
            _split("over-input-parts", input_uncached_tokens=None, input_audio_tokens=41),
            # 500 + 60 + 41 uncached text, image and audio > 600 uncached.
            _split(
                "over-uncached",
                input_audio_tokens=41,
                input_uncached_tokens=600,
                input_cache_write_tokens=0,
            ),  # fmt: skip
            # 250 + 20 + 31 cached by modality > 300 cached.
            _split("over-cached", input_cached_audio_tokens=31),
            # 150 + 10 + 41 output by modality > 200 output.
            _split("over-output", output_audio_tokens=41),
            # A pre-split result's audio is not bounded by output_tokens (not stated then).
            _result("old-audio", out=10, audio=(0, 50)),
        ]
    )
    (day / "page-0001.json").write_text(json.dumps(page))
    records = _records(spark, tmp_path)
    got = {r["project_id"]: (r["status"], r["field"], r["reason"]) for r in records.collect()}
    q = "quarantined"
    assert got == {
        "neg-image": (q, "input_cached_image_tokens", "input_cached_image_tokens is negative"),
        "neg-write": (
            q,
            "input_cache_write_12h_tokens",
            "input_cache_write_12h_tokens is negative",
        ),
        "neg-out-text": (q, "output_text_tokens", "output_text_tokens is negative"),
        "over-input": (
            q,
            "input_uncached_tokens",
            "uncached, cached and cache-write input tokens exceed input tokens",
        ),
        "over-input-parts": (
            q,
            "input_uncached_tokens",
            "uncached, cached and cache-write input tokens exceed input tokens",
        ),
        "over-uncached": (
            q,
            "input_text_tokens",
            "uncached text, image and audio input tokens exceed input_uncached_tokens",
        ),
        "over-cached": (
            q,
            "input_cached_text_tokens",
            "cached text, image and audio input tokens exceed input_cached_tokens",
        ),
        "over-output": (
            q,
            "output_text_tokens",
            "text, image and audio output tokens exceed output_tokens",
        ),
        "old-audio": ("loaded", None, None),
    }
    # The raw record keeps what was delivered (41 uncached audio, not the lake's total).
    raw = json.loads(next(r for r in records.collect() if r["project_id"] == "over-uncached")[
        "raw_record"])  # fmt: skip
    assert (raw["input_audio_tokens"], raw["input_cached_audio_tokens"]) == (41, 30)
    records.unpersist()


def test_a_redelivery_differing_only_in_a_newer_field_is_a_conflict(spark, tmp_path):
    day = tmp_path / "usage" / "openai" / "2024-01-02"
    day.mkdir(parents=True)
    older = _page(
        [
            _split("write-restated", input_cache_write_tokens=90),
            _result("split-added", inp=1000, out=200, audio=(40, 40), input_cached_tokens=300),
            _split("same", input_cache_write_12h_tokens=None),
        ]
    )
    newer = _page(
        [
            _split("write-restated"),
            _split("split-added"),
            _split("same", input_cache_write_12h_tokens=None),
        ]
    )
    (day / "page-0001.json").write_text(json.dumps(older))
    (day / "page-0002.json").write_text(json.dumps(newer))
    os.utime(day / "page-0001.json", (1_900_000_000, 1_900_000_000))
    os.utime(day / "page-0002.json", (2_000_000_000, 2_000_000_000))
    records = _records(spark, tmp_path)
    got = sorted(
        (r["project_id"], r["source_file"].rsplit("/", 1)[1], r["status"], r["reason"],
         r["input_cache_write_tokens"])
        for r in records.collect()
    )  # fmt: skip
    conflict = "conflicting redelivery; the newest pull wins"
    same = "redelivered bucket result (same natural key and numbers)"
    assert got == [
        ("same", "page-0001.json", "deduplicated", same, 100),
        ("same", "page-0002.json", "loaded", None, 100),
        # Same totals: only the split fields were added (NULL before, known now).
        ("split-added", "page-0001.json", "superseded", conflict, None),
        ("split-added", "page-0002.json", "loaded", None, 100),
        ("write-restated", "page-0001.json", "superseded", conflict, 90),
        ("write-restated", "page-0002.json", "loaded", None, 100),
    ]
    records.unpersist()


def _pull(results, more, cursor, start=DAY):
    return {**_page(results, start), "has_more": more, "next_page": cursor}


def test_partial_pulls_are_flagged_by_name_and_their_rows_loaded(spark, tmp_path, caplog):
    from inference_ledger.settings import Settings

    landing = tmp_path / "landing"
    folders = {}
    for channel, day in [("openai", "2024-01-02"), ("openai", "2024-01-03"),
                         ("azure_openai", "2024-01-02"), ("azure_openai", "2024-01-03")]:  # fmt: skip
        folders[channel, day] = landing / "usage" / channel / day
        folders[channel, day].mkdir(parents=True)
    jan3 = DAY + 86400

    def write(channel, day, name, pages):
        path = folders[channel, day] / name
        if name.endswith(".jsonl"):
            path.write_text("".join(json.dumps(p) + "\n" for p in pages))
        else:
            path.write_text(json.dumps(pages[0]))

    # Partial: page 2 asks for more, page 3 never arrived; the file numbered 3 is a redelivered
    # copy of page 1 (its text arrived before), not the continuation.
    write("openai", "2024-01-02", "page-0001.json", [_pull([_result("a1")], True, "cur-A")])
    write("openai", "2024-01-02", "page-0002.json", [_pull([_result("a2")], True, "cur-B")])
    write("openai", "2024-01-02", "page-0003.json", [_pull([_result("a1")], True, "cur-A")])
    # Complete: two page files, plus a redelivered copy of page 1 under a later number (its
    # cursor was answered by page 2).
    first = _pull([_result("b1")], True, "cur-C", jan3)
    write("openai", "2024-01-03", "page-0001.json", [first])
    write("openai", "2024-01-03", "page-0002.json", [_pull([_result("b2")], False, None, jan3)])
    write("openai", "2024-01-03", "page-0005.json", [first])
    # Partial: a .jsonl whose last line asks for more.
    write("azure_openai", "2024-01-02", "pull.jsonl",
          [_pull([_result("c1")], True, "cur-D"), _pull([_result("c2")], True, "cur-E")])  # fmt: skip
    # Complete: a .jsonl continued by the next-numbered file, which ends the pull.
    write("azure_openai", "2024-01-03", "pull-1.jsonl",
          [_pull([_result("d1")], True, "cur-F", jan3), _pull([_result("d2")], True, "cur-G", jan3)])  # fmt: skip
    write("azure_openai", "2024-01-03", "pull-2.jsonl", [_pull([_result("d3")], False, None, jan3)])

    settings = Settings(home=tmp_path / "home", database_url=None, spark_master="local[2]")
    ctx = RunContext(run_id="r", landing=landing, settings=settings, sources=("usage",))
    with caplog.at_level("WARNING", logger="inference_ledger.steps"):
        rows = ingest_landing(spark, ctx)
    got = {
        str(Path(r["source_file"]).relative_to(landing / "usage")): (
            r["rows_read"], r["rows_loaded"], r["rows_deduplicated"], r.get("warning"))
        for r in rows
    }  # fmt: skip
    assert got == {
        "openai/2024-01-02/page-0001.json": (1, 0, 1, None),
        "openai/2024-01-02/page-0002.json": (
            1,
            1,
            0,
            "partial pull: page 2 has has_more=true and next_page cur-B never arrived",
        ),
        "openai/2024-01-02/page-0003.json": (1, 1, 0, None),
        "openai/2024-01-03/page-0001.json": (1, 0, 1, None),
        "openai/2024-01-03/page-0002.json": (1, 1, 0, None),
        "openai/2024-01-03/page-0005.json": (1, 1, 0, None),
        "azure_openai/2024-01-02/pull.jsonl": (
            2,
            2,
            0,
            "partial pull: page 2 has has_more=true and next_page cur-E never arrived",
        ),
        "azure_openai/2024-01-03/pull-1.jsonl": (2, 2, 0, None),
        "azure_openai/2024-01-03/pull-2.jsonl": (1, 1, 0, None),
    }
    for r in rows:  # the per-file tie-out holds
        assert r["rows_read"] == sum(r[f"rows_{s}"] for s in R.STATUSES)
    warned = sorted(m.getMessage() for m in caplog.records if "partial pull" in m.getMessage())
    assert warned == [
        f"{folders['azure_openai', '2024-01-02'] / 'pull.jsonl'}: partial pull: page 2 has "
        "has_more=true and next_page cur-E never arrived",
        f"{folders['openai', '2024-01-02'] / 'page-0002.json'}: partial pull: page 2 has "
        "has_more=true and next_page cur-B never arrived",
    ]
    facts = lake.read_table(spark, ctx.lake_dir, "usage_facts")
    assert sorted(r["project_id"] for r in facts.collect()) == [
        "a1", "a2", "b1", "b2", "c1", "c2", "d1", "d2", "d3"
    ]  # fmt: skip
    # The records were written under the run for the counts and the lake write, then removed.
    assert Path(lake.run_path(ctx.lake_dir, "r", "work")).is_dir()
    assert not Path(lake.run_path(ctx.lake_dir, "r", "work/usage_records")).exists()


def test_generated_newer_fields_and_unfinished_pull_load_as_documented(spark, tmp_path):
    from inference_ledger.sample.scenario import quarter_range
    from inference_ledger.sample.sink import Sink
    from inference_ledger.sample.usage import write_usage

    q = quarter_range("2024-Q1", "2024-Q1")
    old = write_usage(Sink(tmp_path / "old"), q, 3, 0.25, True)
    new = write_usage(
        Sink(tmp_path / "new"), q, 3, 0.25, True, newer_fields=True, unfinished_pull=True
    )
    # The default output has no partial pull; the option makes exactly the one it reports.
    assert usage.partial_pulls(usage.usage_files(tmp_path / "old")) == {}
    assert len(new.unfinished_pulls) == 1 and new.withheld_results > 0
    assert usage.partial_pulls(usage.usage_files(tmp_path / "new")) == {
        str(tmp_path / "new" / f): w for f, w in new.unfinished_pulls.items()
    }

    def totals(landing):
        records = usage.usage_records(usage.read_pages(spark, usage.usage_files(landing)))
        return {
            r["channel"]: r.asDict()
            for r in records.groupBy("channel")
            .agg(
                F.sum(F.when(F.col("status") == "quarantined", 1).otherwise(0)).alias("q"),
                F.sum(F.when(F.col("status") == "loaded", 1).otherwise(0)).alias("loaded"),
                *[
                    F.sum(F.when(F.col("status") == "loaded", F.col(c))).alias(c)
                    for c in [
                        "input_tokens",
                        "input_cached_tokens",
                        "output_tokens",
                        "input_uncached_tokens",
                        "input_cache_write_tokens",
                    ]
                ],  # fmt: skip
            )
            .collect()
        }

    after = totals(tmp_path / "new")
    label = q[0].label
    for channel in ("openai", "azure_openai"):
        a = after[channel]
        assert a["q"] == 0
        assert a["input_tokens"] + a["output_tokens"] == new.tokens[channel][label]
        # The newer split adds up to the same input total.
        assert a["input_uncached_tokens"] + a["input_cached_tokens"] + a[
            "input_cache_write_tokens"] == a["input_tokens"]  # fmt: skip
        assert a["input_cache_write_tokens"] > 0
    # Only first-party results were withheld: the partner's tokens are the default run's.
    assert new.tokens["azure_openai"] == old.tokens["azure_openai"]
    assert new.tokens["openai"][label] < old.tokens["openai"][label]
    assert after["openai"]["loaded"] + after["azure_openai"]["loaded"] == new.results_unique
    assert old.results_unique - new.results_unique == new.withheld_results


def test_a_result_without_input_cached_tokens_and_a_bucket_named_result_load(spark, tmp_path):
    """OpenAI's reference types input_cached_tokens Optional, and its published schema / SDK
    models name a bucket's results `result`: the API reference's own example page, saved
    both ways, loads every token (cached 0 where not reported) instead of losing the rows."""
    day = tmp_path / "usage" / "openai" / "2024-11-01"
    day.mkdir(parents=True)
    start = 1730419200  # the reference's example: 2024-11-01T00:00:00Z
    documented = {
        "object": "organization.usage.completions.result",
        "input_tokens": 1000,
        "output_tokens": 500,
        "input_cached_tokens": 800,
        "num_model_requests": 5,
        "project_id": None,
        "user_id": None,
        "api_key_id": None,
        "model": None,
        "batch": None,
    }
    no_cached = {k: v for k, v in documented.items() if k != "input_cached_tokens"}
    page = {"object": "page", "has_more": False, "next_page": None}
    bucket = {"object": "bucket", "start_time": start, "end_time": start + 86400}
    (day / "api.json").write_text(
        json.dumps({**page, "data": [{**bucket, "results": [documented]}]})
    )
    (day / "sdk-dump.json").write_text(
        json.dumps(
            {**page, "data": [{**bucket, "result": [{**no_cached, "project_id": "proj_sdk"}]}]}
        )
    )
    recs = usage.usage_records(usage.read_pages(spark, usage.usage_files(tmp_path)))
    got = sorted(
        (r["project_id"] or "", r["status"], r["input_tokens"], r["input_cached_tokens"],
         r["output_tokens"], r["num_model_requests"])
        for r in recs.collect()
    )  # fmt: skip
    assert got == [
        ("", "loaded", 1000, 800, 500, 5),
        ("proj_sdk", "loaded", 1000, 0, 500, 5),
    ]


def test_status_and_reason_share_one_dedupe_window(spark, tmp_path):
    """The natural-key window decides both status and reason: Spark must sort and shuffle the
    results for it once, not once per column (at 10M results that is a second full shuffle)."""
    day = tmp_path / "usage" / "openai" / "2024-01-02"
    day.mkdir(parents=True)
    (day / "page-0001.json").write_text(json.dumps(_page([_result("p1"), _result("p2")])))
    records = usage.usage_records(usage.read_pages(spark, usage.usage_files(tmp_path)))
    plan = records._jdf.queryExecution().executedPlan().toString()
    windows = [line for line in plan.splitlines() if re.match(r"^[\s:+-]*Window \[", line)]
    assert len(windows) == 1, plan
    assert {r["status"] for r in records.collect()} == {R.LOADED}


def test_each_check_appears_once_in_the_plan(spark, tmp_path):
    """The quarantine checks decide both reason and field: each is evaluated once per result (one
    CASE giving the first failing check), not once per column (the old CASE per column took
    half the usage time at 1M results)."""
    day = tmp_path / "usage" / "openai" / "2024-01-02"
    day.mkdir(parents=True)
    bad = {**_result("p2"), "object": "organization.usage.embeddings.result"}
    (day / "page-0001.json").write_text(json.dumps(_page([_result("p1"), bad])))
    records = usage.usage_records(usage.read_pages(spark, usage.usage_files(tmp_path)))
    plan = full_plan(spark, records)
    assert plan.count("organization.usage.completions.result") == 1, plan
    assert plan.count("is negative") == len(usage.MEASURES), plan
    got = {(r["status"], r["reason"], r["field"]) for r in records.collect()}
    assert got == {
        (R.LOADED, None, None),
        (R.QUARANTINED, "unknown result object type", "results[].object"),
    }


def test_a_night_that_reads_all_files_again_names_their_partial_pulls(spark, tmp_path, caplog):
    """An incremental night whose new file holds buckets outside the months it touches reads
    every file again; its partial pulls are those of all the files read, not of the files it
    first planned to read (the partial-pull check starts on a thread before that is known)."""
    from inference_ledger.settings import Settings

    landing = tmp_path / "landing"
    jan, mar = (
        landing / "usage" / "openai" / "2024-01-02",
        landing / "usage" / "openai" / "2024-03-05",
    )
    jan.mkdir(parents=True)
    mar.mkdir(parents=True)
    # January: a partial pull (page 1 asks for more, nothing continues it).
    (jan / "pull.jsonl").write_text(json.dumps(_pull([_result("j1")], True, "cur-J")) + "\n")
    (mar / "pull.jsonl").write_text(
        json.dumps(_pull([_result("m1")], False, None, DAY + 63 * 86400)) + "\n"
    )
    settings = Settings(home=tmp_path / "home", database_url=None, spark_master="local[2]")
    first = RunContext(run_id="r1", landing=landing, settings=settings, sources=("usage",))
    ingest_landing(spark, first)
    # The next night: a March file re-pulls a January bucket (outside the months March touches).
    (mar / "late.jsonl").write_text(json.dumps(_pull([_result("j2")], False, None)) + "\n")
    night = RunContext(run_id="r2", landing=landing, settings=settings, sources=("usage",))
    night.known_files = {str(p): R.sha256_file(p) for p in [jan / "pull.jsonl", mar / "pull.jsonl"]}
    with caplog.at_level("INFO", logger="inference_ledger.steps"):
        accounting = ingest_landing(spark, night)
    assert any("reading all" in m.getMessage() for m in caplog.records)
    rows = {Path(r["source_file"]).relative_to(landing): r for r in accounting}
    assert {str(p): (r["rows_read"], r.get("warning")) for p, r in rows.items()} == {
        "usage/openai/2024-01-02/pull.jsonl": (
            1,
            "partial pull: page 1 has has_more=true and next_page cur-J never arrived",
        ),
        "usage/openai/2024-03-05/pull.jsonl": (1, None),
        "usage/openai/2024-03-05/late.jsonl": (1, None),
    }
    facts = lake.read_table(spark, night.lake_dir, "usage_facts")
    assert sorted(r["project_id"] for r in facts.collect()) == ["j1", "j2", "m1"]
