"""The billing ingest DAG's sensor: a complete Cost Management export run has arrived in Azure
Storage since the last sync (imported by the DAG file; needs the Microsoft Azure provider).

`ExportRunSensor` is the provider's `WasbPrefixSensor` with the condition a ledger needs:
not "some blob exists under the prefix" (true forever after the first export) but "a manifest
under `<prefix>/billing/` whose folder changed since the last sync and whose blobs are all
there at the byte counts it states" (`remote.pending_runs`). Cost Management writes the
manifest last, so a run still being written never fires it. Like the provider's sensor it is
deferrable: after a first poke on the worker it waits in the triggerer (`ExportRunTrigger`,
the same check through the provider's async hook), holding no worker slot. On a local landing
it succeeds at once (the schedule is the signal). Credentials come from the Airflow
connection (`wasb_conn_id`, default `wasb_default`): a connection string, account key, SAS
token or managed identity in its extras, never in the repository.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from airflow.providers.microsoft.azure.hooks.wasb import WasbAsyncHook, WasbHook
from airflow.providers.microsoft.azure.sensors.wasb import WasbPrefixSensor
from airflow.triggers.base import BaseTrigger, TriggerEvent

from inference_ledger.ingest import remote


def _where(landing: str | None) -> tuple[str, str, str]:
    """(url, container, prefix) of the landing: the argument, else $LEDGER_LANDING."""
    url = (landing or "").strip() or os.environ.get("LEDGER_LANDING", "")
    container, prefix = remote.container_and_prefix(url) if remote.is_remote(url) else ("", "")
    return url, container, prefix


def _synced(url: str) -> dict:
    from inference_ledger.settings import load_settings

    return remote.sync_state(url, load_settings().home)


def _billing_prefix(prefix: str) -> str:
    return f"{prefix}/billing/" if prefix else "billing/"


def _verdict(log, container: str, ready: list[str], waiting: dict[str, str]) -> bool:
    for name, why in sorted(waiting.items()):
        log.info("waiting for %s/%s: %s", container, name, why)
    if ready:
        log.info("complete export run(s) arrived in %s: %s", container, ", ".join(ready))
    return bool(ready)


class ExportRunTrigger(BaseTrigger):
    """Polls the container (async) until a complete export run not synced yet is there."""

    def __init__(self, landing: str, wasb_conn_id: str, poke_interval: float, public_read=False):
        super().__init__()
        self.landing = landing
        self.wasb_conn_id = wasb_conn_id
        self.poke_interval = poke_interval
        self.public_read = public_read

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "landing": self.landing,
                "wasb_conn_id": self.wasb_conn_id,
                "poke_interval": self.poke_interval,
                "public_read": self.public_read,
            },
        )

    async def _check(self, client, url: str, container: str, prefix: str) -> bool:
        box = client.get_container_client(container)
        listing = {
            b.name: (b.size, b.etag)
            async for b in box.list_blobs(name_starts_with=_billing_prefix(prefix))
        }
        synced = await asyncio.to_thread(_synced, url)
        docs = {}
        for name in remote.manifests_to_read(listing, synced, prefix):
            body = await (await box.download_blob(name)).readall()
            docs[name] = remote.parse_manifest(body.decode("utf-8-sig"))
        ready, waiting = remote.pending_runs(listing, docs, synced, prefix)
        return _verdict(self.log, container, ready, waiting)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        url, container, prefix = _where(self.landing)
        hook = WasbAsyncHook(wasb_conn_id=self.wasb_conn_id, public_read=self.public_read)
        try:
            async with await hook.get_async_conn() as client:
                while not await self._check(client, url, container, prefix):
                    await asyncio.sleep(self.poke_interval)
            yield TriggerEvent({"status": "success", "message": f"export run arrived in {url}"})
        except Exception as exc:  # the sensor fails with it (execute_complete)
            yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})


class ExportRunSensor(WasbPrefixSensor):
    """Succeeds when a complete export run not synced yet is under the landing URL."""

    template_fields = (*WasbPrefixSensor.template_fields, "landing")

    def __init__(self, *, landing: str | None = None, deferrable: bool = True, **kwargs: Any):
        super().__init__(container_name="", prefix="", deferrable=deferrable, **kwargs)
        self.landing = landing

    def poke(self, context: Any) -> bool:
        url, container, prefix = _where(self.landing)
        if not container:
            self.log.info("landing %s is a local folder: nothing to wait for", url or "(default)")
            return True
        hook = WasbHook(wasb_conn_id=self.wasb_conn_id, public_read=self.public_read)
        box = hook.get_conn().get_container_client(container)
        listing = {
            b.name: (b.size, b.etag)
            for b in box.list_blobs(name_starts_with=_billing_prefix(prefix))
        }
        synced = _synced(url)
        docs = {
            name: remote.parse_manifest(box.download_blob(name).readall().decode("utf-8-sig"))
            for name in remote.manifests_to_read(listing, synced, prefix)
        }
        ready, waiting = remote.pending_runs(listing, docs, synced, prefix)
        return _verdict(self.log, container, ready, waiting)

    def execute(self, context: Any) -> None:
        if not self.deferrable:
            super().execute(context=context)
        elif not self.poke(context):
            self.defer(
                timeout=timedelta(seconds=self.timeout),
                trigger=ExportRunTrigger(
                    landing=self.landing or "",
                    wasb_conn_id=self.wasb_conn_id,
                    poke_interval=self.poke_interval,
                    public_read=self.public_read,
                ),
                method_name="execute_complete",
            )
