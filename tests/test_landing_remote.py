"""The landing zone read from object storage: Azurite on 127.0.0.1 holding export runs in Cost
Management's layout, synced into a local mirror (new or changed files only, each verified),
and a run from `abfs://` that publishes exactly what a run on the same files from a local
folder publishes, half-written runs named and not read."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from inference_ledger.ingest import remote
from inference_ledger.ingest.records import InputError
from tests.azurite_support import azurite, blob_fs, upload_tree
from tests.cli_baseline import database_on
from tests.reliability_support import current_ledger, marts_hash, query
from tests.test_real_deliveries_e2e import EA, _export_run, _first_rows, _token_meter_run


@pytest.fixture
def store(tmp_path, monkeypatch):
    """(adlfs filesystem, connection string) of a fresh emulator; `abfs://` URLs resolve to it
    through the environment, as they would to a storage account."""
    with azurite(tmp_path / "azurite") as conn:
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", conn)
        yield blob_fs(conn), conn


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    return root


def test_local_landings_pass_through(tmp_path):
    assert remote.local_landing(tmp_path, tmp_path / "home") == tmp_path
    assert remote.local_landing(f"file://{tmp_path}", tmp_path / "home") == tmp_path
    assert not remote.is_remote(str(tmp_path))
    assert remote.is_remote("abfs://exports/ea") and remote.is_remote("s3://bucket/focus")
    with pytest.raises(InputError, match=r"gs:// is not supported; object-store landings"):
        remote.local_landing("gs://bucket/focus", tmp_path / "home")
    assert remote.mirror_path("abfs://exports@acct.dfs.core.windows.net/cm/ea", tmp_path) == (
        tmp_path / "landing-mirror/abfs/exports@acct.dfs.core.windows.net/cm/ea"
    )


def test_sync_copies_only_what_is_new_or_changed(store, tmp_path):
    fs, _ = store
    files = {
        "billing/azure/ea/20230901-20230930/202310020547/r1/manifest.json": b'{"runInfo": {}}',
        "billing/azure/ea/20230901-20230930/202310020547/r1/part_0_0001.csv": b"a,b\n1,2\n",
        "usage/openai/2024-11-01/page_0001.json": b'{"object": "page", "data": []}',
    }
    upload_tree(fs, _tree(tmp_path / "src", files), "landing/contoso")
    mirror = tmp_path / "home/landing-mirror/abfs/landing/contoso"
    url = "abfs://landing/contoso"

    first = remote.sync(url, mirror)
    assert (sorted(first.copied), first.unchanged) == (sorted(files), 0)
    assert {rel: (mirror / rel).read_bytes() for rel in files} == files
    again = remote.sync(url, mirror)
    assert (again.copied, again.unchanged) == ([], 3)

    # A restated blob and a new page: only those are copied.
    fs.pipe_file(
        "landing/contoso/billing/azure/ea/20230901-20230930/202310020547/r1/part_0_0001.csv",
        b"a,b\n1,2\n3,4\n",
    )
    fs.pipe_file("landing/contoso/usage/openai/2024-11-02/page_0001.json", b"{}")
    third = remote.sync(url, mirror)
    assert (sorted(third.copied), third.unchanged) == (
        [
            "billing/azure/ea/20230901-20230930/202310020547/r1/part_0_0001.csv",
            "usage/openai/2024-11-02/page_0001.json",
        ],
        2,
    )
    assert (mirror / "usage/openai/2024-11-02/page_0001.json").read_bytes() == b"{}"
    # The sync's own state lives beside the mirror, never inside the landing it mirrors.
    assert not [p for p in mirror.rglob("*") if p.name.endswith(".sync.json")]


def test_a_copy_that_disagrees_with_the_store_is_not_kept(store, tmp_path):
    fs, _ = store
    fs.mkdir("landing")
    fs.pipe_file("landing/x/part_1.csv", b"12345")
    info = fs.info("landing/x/part_1.csv")
    dest = tmp_path / "mirror/part_1.csv"
    with pytest.raises(OSError, match="5 bytes copied, the store lists 6"):
        remote._copy_verified(fs, "landing/x/part_1.csv", {**info, "size": 6}, dest)
    wrong_md5 = {**info, "content_settings": {"content_md5": b"\0" * 16}}
    with pytest.raises(OSError, match="MD5 differs"):
        remote._copy_verified(fs, "landing/x/part_1.csv", wrong_md5, dest)
    assert not list((tmp_path / "mirror").iterdir())  # no partial file left behind


def _landing_with_half_written_runs(landing: Path) -> dict[str, Path]:
    """The real EA sample's month-to-date runs and an Azure OpenAI run (as in
    test_real_deliveries_e2e), plus an October run still being written (blob, no manifest
    yet) and a November run whose blob is shorter than its manifest says."""
    older = _export_run(
        landing, "202309150312", "2f6c7a0e-3c1d-4f7e-9a55-0d6f6c9b1e01",
        _first_rows(EA, 6), "part_0_0001.csv", "2023-07-01-preview", 6,
    )  # fmt: skip
    newer = _export_run(
        landing, "202310020547", "7b1e5d44-98a2-4c0b-b5f1-6f0e2d3c4a02",
        _first_rows(EA, 11), "part_0_0001.csv", "2024-04-01", 11,
    )  # fmt: skip
    tokens = _token_meter_run(landing)
    writing = tokens.parent.parent.parent / "202311050300" / "run-still-writing"
    writing.mkdir(parents=True)
    shutil.copy(tokens, writing / "part_0_0001.csv")
    short_dir = tokens.parent.parent.parent / "202311060300" / "run-short"
    shutil.copytree(tokens.parent, short_dir)
    doc = json.loads((short_dir / "manifest.json").read_text())
    doc["runInfo"].update(runId="run-short", submittedTime="2023-11-06T03:00:00Z")
    doc["blobs"][0]["blobName"] = doc["blobs"][0]["blobName"].replace(
        tokens.parent.name, "run-short"
    )
    (short_dir / "manifest.json").write_text(json.dumps(doc))
    body = (short_dir / "part_0_0001.csv").read_bytes()
    (short_dir / "part_0_0001.csv").write_bytes(body[: body.rindex(b"\r\n", 0, -2) + 2])
    return {"older": older, "newer": newer, "tokens": tokens, "writing": writing / "part_0_0001.csv",
            "short": short_dir / "part_0_0001.csv"}  # fmt: skip


def _run(home: Path, url: str, landing: str) -> tuple[int, str]:
    from inference_ledger import cli

    out = io.StringIO()
    with current_ledger(home, url), contextlib.redirect_stdout(out):
        code = cli.main(["run", "--landing", landing, "--as-of", "2025-07-01"])
    return code, out.getvalue()


@pytest.mark.slow
def test_a_run_from_abfs_publishes_what_the_same_local_files_publish(store, tmp_path, pg_url):
    fs, _ = store
    local = tmp_path / "landing"
    files = _landing_with_half_written_runs(local)
    upload_tree(fs, local, "cost-exports/contoso")

    url_remote = database_on(pg_url, "ledger_remote_landing")
    url_local = database_on(pg_url, "ledger_local_landing")
    code, out = _run(tmp_path / "home-remote", url_remote, "abfs://cost-exports/contoso")
    assert code == 0, out
    code, out_local = _run(tmp_path / "home-local", url_local, str(local))
    assert code == 0, out_local

    hashes = marts_hash(url_remote)
    assert hashes == marts_hash(url_local)
    assert hashes["inference_spend_daily"][1] > 0

    mirror = remote.mirror_path("abfs://cost-exports/contoso", tmp_path / "home-remote")
    rows = {
        Path(p).relative_to(mirror): rest
        for p, *rest in query(
            url_remote,
            "SELECT path, rows_read, rows_loaded, rows_superseded, rows_quarantined, warning"
            " FROM audit.input_files",
        )
    }
    rel = {k: v.relative_to(local) for k, v in files.items()}
    assert rows[rel["newer"]] == [11, 11, 0, 0, None]
    assert rows[rel["older"]] == [6, 0, 6, 0, None]
    # The newest October run's blob is shorter than its manifest: rejected, its rows
    # quarantined, the complete run before it is what October publishes.
    assert rows[rel["tokens"]] == [4, 4, 0, 0, None]
    assert rows[rel["short"]][:4] == [3, 0, 0, 3]
    # A run still being written (no manifest yet) is named, not read.
    assert rows[rel["writing"]][:4] == [0, 0, 0, 0]
    assert "not claimed by any export manifest" in rows[rel["writing"]][4]
    [(reason,)] = query(
        url_remote,
        "SELECT DISTINCT reason FROM audit.quarantine WHERE path = %s",
        (str(mirror / rel["short"]),),
    )
    assert reason.startswith("export run rejected: part_0_0001.csv: manifest says 4 data rows")


# ---------------------------------------------------------------- waiting for export runs

RUN = "cost-exports/contoso/billing/azure/ea/20231001-20231031/202311040300/r1"


def test_pending_runs_are_complete_runs_not_synced_yet():
    manifest = {"blobs": [{"blobName": "ea/20231001-20231031/202311040300/r1/part_0.csv",
                           "byteCount": 10}]}  # fmt: skip
    listing = {
        f"{RUN}/part_0.csv": (10, '"0x1"'),
        f"{RUN}/manifest.json": (120, '"0x2"'),
        # still being written: a blob, no manifest yet
        "cost-exports/contoso/billing/azure/ea/20231001-20231031/202311050300/r2/part_0.csv": (
            4,
            '"0x3"',
        ),
        "cost-exports/contoso/billing/focus/aws/20231001-20231031/run-1/focus.csv": (9, '"0x4"'),
        "cost-exports/contoso/usage/openai/2023-10-01/page.json": (5, '"0x5"'),
    }

    prefix = "cost-exports/contoso"
    assert remote.manifests_to_read(listing, {}, prefix) == [f"{RUN}/manifest.json"]
    read = {f"{RUN}/manifest.json": manifest}
    ready, waiting = remote.pending_runs(listing, read, {}, prefix)
    assert (ready, waiting) == (
        [
            "cost-exports/contoso/billing/azure/ea/20231001-20231031/202311040300/r1/manifest.json",
            "cost-exports/contoso/billing/focus/aws/20231001-20231031/run-1/focus.csv",
        ],
        {},
    )
    # Short of the byte count the manifest states: waiting, named.
    short = {**listing, f"{RUN}/part_0.csv": (6, '"0x6"')}
    ready, waiting = remote.pending_runs(short, read, {}, prefix)
    assert waiting == {f"{RUN}/manifest.json": f"{RUN}/part_0.csv: 6 of 10 bytes"}
    # After a sync of everything, nothing is new: no manifest is even read.
    synced = {
        n[len(prefix) + 1 :]: {"size": s, "etag": e.strip('"')} for n, (s, e) in listing.items()
    }
    assert remote.manifests_to_read(listing, synced, prefix) == []
    assert remote.pending_runs(listing, {}, synced, prefix) == ([], {})
    # A restated blob of a synced run makes the run pending again.
    restated = {**listing, f"{RUN}/part_0.csv": (10, '"0x7"')}
    assert remote.pending_runs(restated, read, synced, prefix)[0] == [f"{RUN}/manifest.json"]


@pytest.mark.slow  # Airflow (its sensor and trigger classes)
def test_the_sensor_fires_on_a_complete_run_and_not_on_a_partial_one(store, tmp_path, monkeypatch):
    fs, conn = store
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_WASB_LEDGER_TEST",
        json.dumps({"conn_type": "wasb", "extra": {"connection_string": conn}}),
    )
    from inference_ledger.airflow_sensors import ExportRunSensor

    url = "abfs://cost-exports/contoso"
    sensor = ExportRunSensor(task_id="wait", landing=url, wasb_conn_id="wasb_ledger_test")
    body = _first_rows(EA, 11)
    blob = "ea/20231001-20231031/202311040300/r1/part_0_0001.csv"
    manifest = {"exportConfig": {"exportName": "ea", "type": "ActualCost",
                                 "resourceId": "/providers/Microsoft.Billing/billingAccounts/1"},
                "runInfo": {"runId": "r1", "startDate": "2023-10-01T00:00:00"},
                "blobs": [{"blobName": blob, "byteCount": len(body)}]}  # fmt: skip
    fs.mkdir("cost-exports")

    fs.pipe_file(f"{RUN}/part_0_0001.csv", body[:100])  # the blob, half written, no manifest
    assert sensor.poke({}) is False
    fs.pipe_file(f"{RUN}/manifest.json", json.dumps(manifest).encode())
    assert sensor.poke({}) is False  # manifest there, blob still short of its byte count
    fs.pipe_file(f"{RUN}/part_0_0001.csv", body)
    assert sensor.poke({}) is True

    remote.sync(url, remote.mirror_path(url, tmp_path / "home"))
    assert sensor.poke({}) is False  # synced: nothing new
    # A local landing has nothing to wait for.
    assert ExportRunSensor(task_id="local", landing=str(tmp_path)).poke({}) is True


@pytest.mark.slow  # Airflow (its sensor and trigger classes)
def test_the_deferred_trigger_waits_for_the_run_to_complete(store, tmp_path, monkeypatch):
    """The sensor's trigger, as the triggerer runs it: no event while the run is half
    written, a success event once its blob is whole."""
    import asyncio

    fs, conn = store
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_WASB_LEDGER_TEST",
        json.dumps({"conn_type": "wasb", "extra": {"connection_string": conn}}),
    )
    from inference_ledger.airflow_sensors import ExportRunSensor
    from inference_ledger.airflow_triggers import ExportRunTrigger

    url = "abfs://cost-exports/contoso"
    trigger = ExportRunTrigger(url, "wasb_ledger_test", poke_interval=0.2)
    path, kwargs = trigger.serialize()
    assert path == "inference_ledger.airflow_triggers.ExportRunTrigger"
    body = _first_rows(EA, 11)
    blob = "ea/20231001-20231031/202311040300/r1/part_0_0001.csv"
    manifest = {"blobs": [{"blobName": blob, "byteCount": len(body)}]}
    fs.mkdir("cost-exports")
    fs.pipe_file(f"{RUN}/part_0_0001.csv", body[:100])
    fs.pipe_file(f"{RUN}/manifest.json", json.dumps(manifest).encode())

    async def first_event(seconds):
        events = ExportRunTrigger(**kwargs).run()
        return await asyncio.wait_for(anext(events), seconds)

    with pytest.raises(TimeoutError):
        asyncio.run(first_event(2))
    fs.pipe_file(f"{RUN}/part_0_0001.csv", body)
    event = asyncio.run(first_event(20))
    assert event.payload == {"status": "success", "message": f"export run arrived in {url}"}
    # The sensor defers to this trigger when its first poke finds nothing.
    assert ExportRunSensor(task_id="wait", landing=url).deferrable is True


@pytest.mark.parametrize(
    "url",
    [
        "abfss://lake@devstoreaccount1.dfs.core.windows.net/ledger/_runs/r1/marts/t",
        "abfs://lake/ledger/_runs/r1/marts/t",
    ],
    ids=["abfss-account-host", "abfs"],
)
def test_a_lake_on_azure_storage_is_copied_like_the_same_local_folder(
    store, tmp_path, pg_conn, url
):
    """LEDGER_LAKE_URI=abfss://container@account.dfs.core.windows.net/… (what Spark writes the
    lake with): the run's Parquet is read through adlfs with the environment's credentials
    (Azurite's connection string here), the same rows as from the files on disk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from inference_ledger.db import copy_parquet

    fs, _ = store
    local = tmp_path / "t"
    local.mkdir()
    rows = [{"k": "a", "amount": Decimal("0.0000000001")}, {"k": "b", "amount": None}]
    schema = pa.schema([("k", pa.string()), ("amount", pa.decimal128(38, 10))])
    pq.write_table(pa.Table.from_pylist(rows, schema), local / "part-00000.parquet")
    (local / "_SUCCESS").write_text("")
    upload_tree(fs, local, "lake/ledger/_runs/r1/marts/t")
    with pg_conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE t_azure (k text, amount numeric(38,10))")
    assert copy_parquet(pg_conn, "pg_temp", "t_azure", ["k", "amount"], url) == 2
    with pg_conn.cursor() as cur:
        cur.execute("SELECT k, amount FROM t_azure ORDER BY k")
        assert cur.fetchall() == [("a", Decimal("0.0000000001")), ("b", None)]
