"""The incremental ingest's plan (run/plan.py): what is read again, decided from paths and
checksums alone -- no Spark, no files, milliseconds."""

from __future__ import annotations

from inference_ledger.run import plan

U = "/l/usage/openai"


def test_finance_is_unchanged_only_when_every_file_is_known_with_its_checksum():
    known = {"/l/finance/fx/a.csv": "1", "/l/finance/revenue/r.csv": "2", "/l/usage/x.json": "9"}
    same = {"/l/finance/fx/a.csv": "1", "/l/finance/revenue/r.csv": "2"}
    assert plan.finance_unchanged("/l/finance", same, known) is True
    assert plan.finance_unchanged("/l/finance/", same, known) is True
    changed = {**same, "/l/finance/fx/a.csv": "1b"}
    assert plan.finance_unchanged("/l/finance", changed, known) is False
    added = {**same, "/l/finance/prices/p.csv": "3"}
    assert plan.finance_unchanged("/l/finance", added, known) is False
    gone = {"/l/finance/fx/a.csv": "1"}  # a file ingested before is no longer there
    assert plan.finance_unchanged("/l/finance", gone, known) is False
    assert plan.finance_unchanged("/l/finance", {}, {}) is False  # nothing: nothing to keep


def test_a_billing_month_is_skipped_only_when_whole_known_and_in_the_lake():
    months = [
        plan.BillingMonth("2024-01", ("/b/1a.csv", "/b/1b.csv"), False),
        plan.BillingMonth("2024-02", ("/b/2.csv",), False),  # a file changed
        plan.BillingMonth("2024-03", ("/b/3.csv",), True),  # a run lacks a file
        plan.BillingMonth("2024-04", ("/b/4.csv",), False),  # not in the lake
        plan.BillingMonth("2024-05", ("/b/5.csv",), False),  # a new file
    ]
    sums = {"/b/1a.csv": "a", "/b/1b.csv": "b", "/b/2.csv": "c2", "/b/3.csv": "d",
            "/b/4.csv": "e", "/b/5.csv": "f"}  # fmt: skip
    known = {"/b/1a.csv": "a", "/b/1b.csv": "b", "/b/2.csv": "c", "/b/3.csv": "d",
             "/b/4.csv": "e"}  # fmt: skip
    in_lake = {"2024-01", "2024-02", "2024-03", "2024-05"}
    assert plan.billing_months_to_skip(months, sums, known, in_lake) == {"2024-01"}


def test_a_new_usage_file_rewrites_its_month_and_the_month_a_repull_reaches():
    files = [f"{U}/2024-02-02/p1.json", f"{U}/2024-02-20/p1.json", f"{U}/2024-01-15/p1.json"]
    sums = {f: "s" for f in files} | {files[0]: "new"}
    known = {f: "s" for f in files}
    todo = plan.usage_months_to_rewrite(files, sums, known)
    # 2 February's pull may restate 30 January (3 days back): both months are rewritten.
    assert todo == plan.UsagePlan(new=(files[0],), months=("2024-01", "2024-02"))
    fed = {f"{U}/2024-03-01/late.json"}  # fed January's partition from a later day folder
    read = plan.usage_files_to_read([*files, *fed, f"{U}/2024-03-05/p.json"], todo, fed)
    assert read == [*files, *fed]


def test_a_usage_file_outside_a_day_folder_means_reading_everything():
    files = [f"{U}/2024-02-02/p1.json", f"{U}/loose.json"]
    sums = {f: "s" for f in files}
    assert plan.usage_months_to_rewrite(files, sums, {files[0]: "s"}) is None
    # Nothing new: nothing to rewrite, and no file is read.
    unchanged = plan.usage_months_to_rewrite(files, sums, sums)
    assert unchanged == plan.UsagePlan(new=(), months=())
    assert plan.usage_files_to_read(files, unchanged, set()) == []


def test_folder_day():
    assert str(plan.folder_day(f"{U}/2024-02-29/p.json")) == "2024-02-29"
    assert plan.folder_day(f"{U}/2024-02-30/p.json") is None
    assert plan.folder_day("p.json") is None
