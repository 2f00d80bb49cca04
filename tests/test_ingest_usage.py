"""Usage pages on tiny hand-built landing folders: audio tokens, exact values per rule."""

from __future__ import annotations

import json
import os
from datetime import date

from inference_ledger import lake
from inference_ledger.ingest import records as R
from inference_ledger.ingest import usage

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
