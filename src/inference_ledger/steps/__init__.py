"""The steps of a ledger run, each a `Step` (run/runner.py: plan -> gate -> execute -> record ->
gate) that every driver runs the same way:

- `ingest.IngestStep`: landing folder -> lake, every file and row accounted for;
- `aggregate.AggregateStep`: lake -> the run's marts, written under the run;
- `publish.PublishStep`: staging -> data-quality gate -> marts, in one transaction;
- `report.ReportStep`: the period reports of the quarters the run published.
"""
