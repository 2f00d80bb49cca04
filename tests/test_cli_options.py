"""The CLI's scriptable surface: --version, -v/-q anywhere, help, one-line errors with exit 2,
the empty-landing refusal, `db url --psql`, progress lines, and `run --json` on a real run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import psycopg2
import pytest

from inference_ledger import __version__, cli, progress
from inference_ledger.run.context import MARTS


def _ledger(args: list[str], home, **env) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "LEDGER_DATABASE_URL"}
    full.update(LEDGER_HOME=str(home), **env)
    return subprocess.run(
        [sys.executable, "-m", "inference_ledger.cli", *args],
        env=full, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"ledger {__version__}\n"


@pytest.mark.parametrize(
    ("argv", "verbose", "quiet"),
    [
        (["-v", "db", "url"], True, False),
        (["db", "url", "-v"], True, False),
        (["-q", "db", "url"], False, True),
        (["db", "-q", "url"], False, True),
        (["db", "url"], False, False),
    ],
)
def test_verbose_and_quiet_before_or_after_the_subcommand(argv, verbose, quiet):
    args = cli.build_parser().parse_args(argv)
    assert (getattr(args, "verbose", False), getattr(args, "quiet", False)) == (verbose, quiet)


def test_help_lists_settings_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in ("LEDGER_HOME", "LEDGER_DATABASE_URL", "LEDGER_SPARK_MASTER", "LEDGER_LAKE_URI"):
        assert name in out
    assert "(./var)" in out and "(local[*])" in out
    assert "exit codes:" in out
    for code in ("  0  success", "  1  ", "  2  usage", "  3  a data-quality gate failed"):
        assert code in out


def test_empty_landing_is_refused_before_anything_starts(tmp_path):
    landing = tmp_path / "landing"
    (landing / "billing" / "azure").mkdir(parents=True)
    (landing / "usage").mkdir()
    (landing / "notes.txt").write_text("not an input\n")
    home = tmp_path / "home"
    t0 = time.monotonic()
    done = _ledger(["run", "--landing", str(landing)], home)
    elapsed = time.monotonic() - t0
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(
        f"ledger: input error: nothing to ingest under {landing}: no export run, usage page"
        " or finance file (files found: billing/: 0, usage/: 0, finance/: 0, elsewhere: 1);"
        " expected billing/azure/**/manifest.json"
    )
    # No embedded Postgres was started (so no run recorded), no Spark, no lake.
    assert not home.exists()
    assert elapsed < 20


def test_missing_landing_is_still_a_usage_error(tmp_path):
    done = _ledger(["run", "--landing", str(tmp_path / "nope")], tmp_path / "home")
    assert done.returncode == 2
    assert f"landing folder {tmp_path / 'nope'} does not exist" in done.stderr


def test_malformed_database_url_is_one_line(tmp_path):
    done = _ledger(["db", "migrate"], tmp_path, LEDGER_DATABASE_URL="not a url")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "ledger: LEDGER_DATABASE_URL is not a valid postgresql:// URL (see `ledger --help`)\n"
    )
    done = _ledger(["db", "migrate"], tmp_path, LEDGER_DATABASE_URL="mysql://u@h/db")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1


def test_unreachable_database_names_host_and_port_not_password(tmp_path):
    url = "postgresql+psycopg2://bob:s3cret-pw@127.0.0.1:1/ledger"
    done = _ledger(["db", "migrate"], tmp_path, LEDGER_DATABASE_URL=url)
    assert (done.returncode, done.stdout) == (2, "")
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("ledger: cannot connect to the database at 127.0.0.1:1: ")
    assert "s3cret-pw" not in done.stderr and "Traceback" not in done.stderr


def test_db_url_psql_is_a_libpq_url_psql_accepts(pg_url, capsys):
    from inference_ledger.db import redact

    assert cli.main(["db", "url"]) == 0
    assert capsys.readouterr().out == redact(pg_url) + "\n"
    assert cli.main(["db", "url", "--psql"]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("postgresql://")
    if shutil.which("psql"):
        done = subprocess.run(
            ["psql", url, "-Atc", "SELECT current_database()"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert (done.returncode, done.stdout) == (0, "ledger\n"), done.stderr
    conn = psycopg2.connect(url)  # the same string as a libpq DSN
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_database()")
            assert cur.fetchone() == ("ledger",)
    finally:
        conn.close()


def test_progress_lines(capsys):
    progress.configure(True)
    try:
        progress.ingested(
            [
                {"source": "billing.azure", "rows_read": 10},
                {"source": "billing.focus", "rows_read": 5},
                {"source": "usage", "rows_read": 7},
                {"source": "finance.fx", "rows_read": 3},
                {"source": "finance.revenue", "rows_read": 4},
            ]
        )
        progress.stage("aggregate")
    finally:
        progress.configure(False)
    progress.stage("not printed")
    err = capsys.readouterr().err.splitlines()
    tails = [line.split("s ", 1)[1] for line in err]
    assert tails == [
        "ingest billing: 2 files, 15 rows read",
        "ingest usage: 1 files, 7 rows read",
        "ingest finance: 2 files, 7 rows read",
        "aggregate",
    ]
    assert all(line.startswith("ledger: ") for line in err)


@pytest.mark.slow
def test_run_json_is_one_object_matching_the_audit(cli_baseline, pg_url, tmp_path, capsys):
    """The baseline's landing run again into a fresh database with --json: stdout is exactly
    one JSON object, and its counts are those the baseline run recorded and published."""
    from inference_ledger.db import connect
    from tests.cli_baseline import PERIOD_ARGS, database_on
    from tests.reliability_support import current_ledger

    landing, baseline_url = cli_baseline
    conn = connect(baseline_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT split_part(source, '.', 1), count(*), sum(rows_read), sum(rows_loaded),"
                " sum(rows_quarantined), sum(rows_superseded), sum(rows_deduplicated)"
                " FROM audit.input_files WHERE run_id = (SELECT run_id FROM audit.runs"
                " WHERE status = 'succeeded' ORDER BY started_at LIMIT 1)"
                " GROUP BY 1 ORDER BY 1"
            )
            expected_sources = {
                s: dict(zip(("files", *cli._COUNTS), map(int, rest), strict=True))
                for s, *rest in cur.fetchall()
            }
            marts = {}
            # Every mart the publish step writes (its row count is the progress line's).
            for mart in MARTS:
                cur.execute(f"SELECT count(*) FROM marts.{mart}")
                marts[mart] = cur.fetchone()[0]
        conn.commit()
    finally:
        conn.close()
    capsys.readouterr()
    url = database_on(pg_url, "ledger_cli_json")
    with current_ledger(tmp_path / "home", url):
        assert cli.main(["run", "--json", "--landing", str(landing), *PERIOD_ARGS, "-v"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    # -v: the progress lines on stderr although it is not a terminal here.
    stages = [
        line.split("s ", 1)[1] for line in captured.err.splitlines() if line.startswith("ledger: ")
    ]
    assert stages == [
        *(
            f"ingest {s}: {expected_sources[s]['files']} files, {expected_sources[s]['read']} rows read"
            for s in ("billing", "usage", "finance")
        ),
        "aggregate",
        f"audit (GX) and publish: {sum(marts.values())} mart rows",
    ]
    assert out.count("\n") == 1
    doc = json.loads(out)
    assert doc["status"] == "succeeded"
    assert doc["range"] == {"start": "2024-01-01", "end": "2024-04-01", "end_is_exclusive": True}
    assert doc["sources"] == expected_sources
    assert set(expected_sources) == {"billing", "finance", "usage"}
    for k in cli._COUNTS:
        assert doc["rows"][k] == sum(s[k] for s in expected_sources.values())
    assert doc["files"] == sum(s["files"] for s in expected_sources.values())
    assert {m: doc["published_rows"].get(m) for m in marts} == marts
    assert doc["checks"] > 0 and doc["warnings"] == 0
