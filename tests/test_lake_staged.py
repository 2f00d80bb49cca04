"""Rows written once under a run in the lake's layout, then moved in as the table's partitions
(`lake.write_staged`, `lake.replace_partitions`): what a dynamic partition overwrite does."""

from __future__ import annotations

from pyspark.sql import functions as F

from inference_ledger import contracts, lake


def _facts(spark, rows):
    """usage_facts rows (month, project, input tokens, status, reason) with the other columns
    null, plus two of a record's own columns."""
    schema = contracts.spark_schema("lake", "usage_facts")
    frame = spark.createDataFrame(
        rows,
        "usage_month string, project_id string, input_tokens long, status string, reason string",
    )
    others = [
        F.lit(None).cast(f.dataType).alias(f.name)
        for f in schema.fields
        if f.name not in ("usage_month", "project_id", "input_tokens")
    ]
    return frame.select("usage_month", "project_id", "input_tokens", *others, "status", "reason")


def _lake_rows(spark, root):
    return sorted(
        (r.usage_month, r.project_id, r.input_tokens)
        for r in lake.read_table(spark, root, "usage_facts").collect()
    )


def test_loaded_folders_replace_only_their_months(spark, tmp_path):
    root = tmp_path / "lake"
    lake.write_table(
        _facts(
            spark,
            [("2024-01", "old-jan", 1, "loaded", None), ("2024-02", "old-feb", 2, "loaded", None)],
        ),
        root,
        "usage_facts",
    )
    staged = str(tmp_path / "run" / "records")
    written = lake.write_staged(
        _facts(
            spark,
            [
                ("2024-02", "new-feb", 20, "loaded", None),
                ("2024-03", "new-mar", 30, "loaded", None),
                ("2024-03", "bad-mar", -1, "quarantined", "negative tokens"),
                (None, "no-month", 5, "quarantined", "no bucket start"),
            ],
        ),
        "usage_facts",
        staged,
        "status",
    )
    # Read back: every record, its own columns and the partition values included.
    assert sorted((r.project_id, r.status, r.usage_month, r.reason) for r in written.collect()) == [
        ("bad-mar", "quarantined", "2024-03", "negative tokens"),
        ("new-feb", "loaded", "2024-02", None),
        ("new-mar", "loaded", "2024-03", None),
        ("no-month", "quarantined", None, "no bucket start"),
    ]
    assert dict(written.dtypes)["input_tokens"] == "bigint"

    moved = lake.replace_partitions(spark, f"{staged}/status=loaded", root, "usage_facts")

    assert sorted(moved) == ["2024-02", "2024-03"]
    # January untouched, February replaced, March added; no quarantined row in the lake.
    assert _lake_rows(spark, root) == [
        ("2024-01", "old-jan", 1),
        ("2024-02", "new-feb", 20),
        ("2024-03", "new-mar", 30),
    ]
    assert lake.read_table(spark, root, "usage_facts").columns == [
        c.name for c in contracts.columns("lake", "usage_facts")
    ]


def test_only_the_named_months_are_moved(spark, tmp_path):
    root = tmp_path / "lake"
    lake.write_table(
        _facts(spark, [("2024-01", "old-jan", 1, "loaded", None)]), root, "usage_facts"
    )
    staged = str(tmp_path / "records")
    lake.write_staged(
        _facts(
            spark,
            [("2024-01", "re-read-jan", 10, "loaded", None), ("2024-02", "feb", 2, "loaded", None)],
        ),
        "usage_facts",
        staged,
        "status",
    )
    assert lake.replace_partitions(
        spark, f"{staged}/status=loaded", root, "usage_facts", ["2024-02"]
    ) == ["2024-02"]
    assert _lake_rows(spark, root) == [("2024-01", "old-jan", 1), ("2024-02", "feb", 2)]
    # Nothing staged (no loaded row): the lake stays as it is.
    assert (
        lake.replace_partitions(spark, f"{staged}/status=deduplicated", root, "usage_facts") == []
    )
    assert _lake_rows(spark, root) == [("2024-01", "old-jan", 1), ("2024-02", "feb", 2)]
