"""The deferred half of the billing ingest DAG's export-run sensor (`airflow_sensors`): runs in
the triggerer, which imports it by its path; never imported at DAG parse time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from inference_ledger.airflow_sensors import _billing_prefix, _judge, _synced, _where


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
        from inference_ledger.ingest import remote

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
        return _judge(self.log, container, listing, synced, prefix, docs)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.providers.microsoft.azure.hooks.wasb import WasbAsyncHook

        url, container, prefix = _where(self.landing)
        hook = WasbAsyncHook(wasb_conn_id=self.wasb_conn_id, public_read=self.public_read)
        try:
            async with await hook.get_async_conn() as client:
                while not await self._check(client, url, container, prefix):
                    await asyncio.sleep(self.poke_interval)
            yield TriggerEvent({"status": "success", "message": f"export run arrived in {url}"})
        except Exception as exc:  # the sensor fails with it (execute_complete)
            yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})
