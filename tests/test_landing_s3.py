"""The landing zone read from S3: moto's S3 server on 127.0.0.1 holding an AWS Data Exports
FOCUS export (the export's S3 prefix set to the landing's `billing/focus/aws`) beside Cost
Management runs, synced into a local mirror (new or changed objects only, each verified), a
run from `s3://` publishing exactly what the same files publish from a local folder, and the
sensor waiting for AWS's manifest, written after the data files it lists."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from inference_ledger.ingest import remote
from tests.cli_baseline import database_on
from tests.moto_support import moto_s3, s3_fs
from tests.reliability_support import current_ledger, marts_hash, query
from tests.test_exports_aws import EXPORT, REAL, SAMPLE, deliver
from tests.test_landing_remote import _landing_with_half_written_runs

BUCKET = "cost-exports"
URL = f"s3://{BUCKET}/contoso"
AWS = "billing/focus/aws"
CACHED = REAL / "cached_tokens_via_csp_marketplace.csv"


@pytest.fixture
def store(monkeypatch):
    with moto_s3(monkeypatch):
        fs = s3_fs()
        fs.mkdir(BUCKET)
        yield fs


def _upload(fs, local: Path, key_prefix: str) -> None:
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        fs.pipe_file(f"{key_prefix}/{path.relative_to(local).as_posix()}", path.read_bytes())


def test_s3_landings_are_supported_and_mirrored_by_bucket():
    assert remote.is_remote(URL)
    assert remote.container_and_prefix(URL) == (BUCKET, "contoso")
    assert remote.mirror_path(URL, Path("/h")) == Path("/h/landing-mirror/s3/cost-exports/contoso")


def test_sync_from_s3_copies_only_what_is_new_or_changed(store, tmp_path):
    files = {
        f"{AWS}/{EXPORT}/data/BILLING_PERIOD=2025-05/{EXPORT}-00001.csv.gz": b"\x1f\x8b part",
        f"{AWS}/{EXPORT}/metadata/BILLING_PERIOD=2025-05/{EXPORT}-Manifest.json": b"{}",
        "usage/openai/2025-05-01/page_0001.json": b'{"object": "page", "data": []}',
    }
    for rel, body in files.items():
        store.pipe_file(f"{BUCKET}/contoso/{rel}", body)
    mirror = tmp_path / "mirror"
    first = remote.sync(URL, mirror)
    assert (sorted(first.copied), first.unchanged) == (sorted(files), 0)
    assert {rel: (mirror / rel).read_bytes() for rel in files} == files
    # The mirror keeps the object's last-modified time (an export run's submitted time).
    for rel in files:
        listed = store.info(f"{BUCKET}/contoso/{rel}")["LastModified"]
        assert datetime.fromtimestamp((mirror / rel).stat().st_mtime, UTC) == listed
    assert remote.sync(URL, mirror).copied == []

    store.pipe_file(f"{BUCKET}/contoso/{next(iter(files))}", b"\x1f\x8b restated")
    again = remote.sync(URL, mirror)
    assert (again.copied, again.unchanged) == ([next(iter(files))], 2)


def test_an_object_that_changes_while_it_is_copied_is_not_kept(store, tmp_path):
    key = f"{BUCKET}/x/part.csv"
    store.pipe_file(key, b"12345")
    listed = store.info(key)
    store.pipe_file(key, b"54321")  # rewritten between the listing and the copy
    with pytest.raises(OSError, match="the object changed while it was copied"):
        remote._copy_verified(store, key, listed, tmp_path / "m/part.csv")
    assert not list((tmp_path / "m").iterdir())


RUN = f"contoso/{AWS}/{EXPORT}"


def _aws_listing(parts: dict[str, int], manifest: dict | None) -> tuple[dict, dict]:
    listing = {
        f"{RUN}/data/BILLING_PERIOD=2025-05/{n}": (size, f'"e-{n}"') for n, size in parts.items()
    }
    docs = {}
    if manifest is not None:
        name = f"{RUN}/metadata/BILLING_PERIOD=2025-05/{EXPORT}-Manifest.json"
        listing[name] = (300, '"m1"')
        docs[name] = manifest
    return listing, docs


def test_pending_aws_runs_wait_for_the_manifest_and_every_file_it_lists():
    uri = f"s3://{BUCKET}/{RUN}/data/BILLING_PERIOD=2025-05/{EXPORT}-0000"
    manifest = {
        "executionId": "e1",
        "exportArn": "arn",
        "dataFiles": [f"{uri}1.csv.gz", f"{uri}2.csv.gz"],
    }
    # Data files written, manifest not yet: nothing is ready (they are never a folder run).
    listing, docs = _aws_listing({f"{EXPORT}-00001.csv.gz": 10}, None)
    assert remote.pending_runs(listing, docs, {}, "contoso") == ([], {})
    # The manifest lists a file not there.
    listing, docs = _aws_listing({f"{EXPORT}-00001.csv.gz": 10}, manifest)
    [name] = docs
    assert remote.manifests_to_read(listing, {}, "contoso") == [name]
    assert remote.pending_runs(listing, docs, {}, "contoso") == (
        [],
        {name: f"{uri}2.csv.gz not there"},
    )
    # Every listed file there: ready; once synced, nothing is new.
    listing, docs = _aws_listing(
        {f"{EXPORT}-00001.csv.gz": 10, f"{EXPORT}-00002.csv.gz": 7}, manifest
    )
    assert remote.pending_runs(listing, docs, {}, "contoso") == ([name], {})
    synced = {
        n[len("contoso/") :]: {"size": s, "etag": e.strip('"')} for n, (s, e) in listing.items()
    }
    assert remote.pending_runs(listing, {}, synced, "contoso") == ([], {})


def _run(home: Path, url: str, landing: str) -> tuple[int, str]:
    from inference_ledger import cli

    out = io.StringIO()
    with current_ledger(home, url), contextlib.redirect_stdout(out):
        code = cli.main(["run", "--landing", landing, "--as-of", "2025-07-01"])
    return code, out.getvalue()


@pytest.mark.slow
def test_a_run_from_s3_publishes_what_the_same_local_files_publish(store, tmp_path, pg_url):
    local = tmp_path / "landing"
    _landing_with_half_written_runs(local)
    deliver(local / AWS, "2025-05", "exec-0001", [SAMPLE.read_bytes(), CACHED.read_bytes()],
            prefix="", uri_base=f"{URL}/{AWS}")  # fmt: skip
    # The next month's refresh is still writing: data, no manifest yet.
    deliver(local / AWS, "2025-06", "exec-0002", [SAMPLE.read_bytes()], prefix="", manifest=False)
    _upload(store, local, f"{BUCKET}/contoso")

    url_remote = database_on(pg_url, "ledger_s3_landing")
    url_local = database_on(pg_url, "ledger_s3_local_landing")
    code, out = _run(tmp_path / "home-remote", url_remote, URL)
    assert code == 0, out
    code, out_local = _run(tmp_path / "home-local", url_local, str(local))
    assert code == 0, out_local
    assert marts_hash(url_remote) == marts_hash(url_local)

    rows = query(
        url_remote,
        "SELECT model_id, token_direction, workload, sum(billed_cost_usd)"
        " FROM marts.inference_spend_daily WHERE usage_date >= '2025-05-01'"
        " AND usage_date < '2025-06-01' GROUP BY 1, 2, 3 ORDER BY 1, 2",
    )
    assert sum(r[3] for r in rows) == Decimal("52.00")  # both parts: 4.50 + 47.50
    assert {r[2] for r in rows} == {"inference"}
    mirror = remote.mirror_path(URL, tmp_path / "home-remote")
    files = {
        Path(p).relative_to(mirror).as_posix(): rest
        for p, *rest in query(
            url_remote, "SELECT path, rows_read, rows_loaded, warning FROM audit.input_files"
        )
    }
    part = f"{AWS}/{EXPORT}/data/BILLING_PERIOD=2025-0{{}}/{EXPORT}-0000{{}}.csv.gz"
    assert files[part.format(5, 1)] == [2, 2, None]
    assert files[part.format(5, 2)] == [2, 2, None]
    assert files[part.format(6, 1)][:2] == [0, 0]
    assert "not claimed by any export manifest" in files[part.format(6, 1)][2]


def _aws_conn(monkeypatch, tmp_path) -> None:
    import os

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path / "home"))
    extra = {"endpoint_url": os.environ["AWS_ENDPOINT_URL_S3"], "region_name": "us-east-1"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_LEDGER_TEST",
        json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}),
    )


def _put_run(fs, parts: list[str], manifest: bool) -> None:
    data = f"{BUCKET}/{RUN}/data/BILLING_PERIOD=2025-05"
    for name in parts:
        fs.pipe_file(f"{data}/{name}", SAMPLE.read_bytes())
    if manifest:
        doc = {"executionId": "e1", "exportArn": "arn:aws:bcm-data-exports:::export/x",
               "dataFiles": [f"s3://{data}/{EXPORT}-0000{n}.csv.gz" for n in (1, 2)]}  # fmt: skip
        fs.pipe_file(f"{BUCKET}/{RUN}/metadata/BILLING_PERIOD=2025-05/{EXPORT}-Manifest.json",
                     json.dumps(doc).encode())  # fmt: skip


@pytest.mark.slow  # Airflow (its sensor and trigger classes)
def test_the_sensor_fires_on_a_complete_aws_run_and_not_on_a_partial_one(
    store, tmp_path, monkeypatch
):
    _aws_conn(monkeypatch, tmp_path)
    from inference_ledger.airflow_sensors import ExportRunSensor

    sensor = ExportRunSensor(task_id="wait", landing=URL, aws_conn_id="aws_ledger_test")
    _put_run(store, [f"{EXPORT}-00001.csv.gz"], manifest=False)
    assert sensor.poke({}) is False  # data files, no manifest yet
    _put_run(store, [], manifest=True)
    assert sensor.poke({}) is False  # the manifest lists a second file not there
    _put_run(store, [f"{EXPORT}-00002.csv.gz"], manifest=False)
    assert sensor.poke({}) is True
    remote.sync(URL, remote.mirror_path(URL, tmp_path / "home"))
    assert sensor.poke({}) is False  # synced: nothing new


@pytest.mark.slow  # Airflow (its sensor and trigger classes)
def test_the_deferred_trigger_waits_for_the_aws_run_to_complete(store, tmp_path, monkeypatch):
    _aws_conn(monkeypatch, tmp_path)
    from inference_ledger.airflow_triggers import ExportRunTrigger

    _, kwargs = ExportRunTrigger(
        URL, "wasb_default", 0.2, aws_conn_id="aws_ledger_test"
    ).serialize()
    assert kwargs["aws_conn_id"] == "aws_ledger_test"
    _put_run(store, [f"{EXPORT}-00001.csv.gz"], manifest=True)

    async def first_event(seconds):
        return await asyncio.wait_for(anext(ExportRunTrigger(**kwargs).run()), seconds)

    with pytest.raises(TimeoutError):
        asyncio.run(first_event(2))
    _put_run(store, [f"{EXPORT}-00002.csv.gz"], manifest=False)
    event = asyncio.run(first_event(20))
    assert event.payload == {"status": "success", "message": f"export run arrived in {URL}"}
