"""The deferred half of the billing ingest DAG's export-run sensor (`airflow_sensors`): runs in
the triggerer, which imports it by its path; never imported at DAG parse time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from inference_ledger.airflow_sensors import _billing_prefix, _is_s3, _judge, _synced, _where


class ExportRunTrigger(BaseTrigger):
    """Polls the container or bucket (async) until a complete export run not synced yet is
    there: Azure through the provider's `WasbAsyncHook`, S3 through `S3Hook`'s aiobotocore
    client."""

    def __init__(
        self,
        landing: str,
        wasb_conn_id: str,
        poke_interval: float,
        public_read: bool = False,
        aws_conn_id: str = "aws_default",
    ):
        super().__init__()
        self.landing = landing
        self.wasb_conn_id = wasb_conn_id
        self.poke_interval = poke_interval
        self.public_read = public_read
        self.aws_conn_id = aws_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "landing": self.landing,
                "wasb_conn_id": self.wasb_conn_id,
                "poke_interval": self.poke_interval,
                "public_read": self.public_read,
                "aws_conn_id": self.aws_conn_id,
            },
        )

    async def _judged(self, listing: dict, read, url: str, container: str, prefix: str) -> bool:
        from inference_ledger.ingest import remote

        synced = await asyncio.to_thread(_synced, url)
        docs = {}
        for name in remote.manifests_to_read(listing, synced, prefix):
            docs[name] = remote.parse_manifest(await read(name))
        return _judge(self.log, container, listing, synced, prefix, docs)

    async def _check_wasb(self, client, url: str, container: str, prefix: str) -> bool:
        box = client.get_container_client(container)
        listing = {
            b.name: (b.size, b.etag)
            async for b in box.list_blobs(name_starts_with=_billing_prefix(prefix))
        }

        async def read(name: str) -> str:
            return (await (await box.download_blob(name)).readall()).decode("utf-8-sig")

        return await self._judged(listing, read, url, container, prefix)

    async def _check_s3(self, hook, client, url: str, bucket: str, prefix: str) -> bool:
        listing = {
            o["Key"]: (o["Size"], o["ETag"])
            async for o in hook.get_file_metadata_async(client, bucket, _billing_prefix(prefix))
        }

        async def read(key: str) -> str:
            response = await client.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as body:
                return (await body.read()).decode("utf-8-sig")

        return await self._judged(listing, read, url, bucket, prefix)

    async def _wait(self, url: str, container: str, prefix: str) -> None:
        if _is_s3(url):
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            hook = S3Hook(aws_conn_id=self.aws_conn_id)
            async with await hook.get_async_conn() as client:
                while not await self._check_s3(hook, client, url, container, prefix):
                    await asyncio.sleep(self.poke_interval)
            return
        from airflow.providers.microsoft.azure.hooks.wasb import WasbAsyncHook

        hook = WasbAsyncHook(wasb_conn_id=self.wasb_conn_id, public_read=self.public_read)
        async with await hook.get_async_conn() as client:
            while not await self._check_wasb(client, url, container, prefix):
                await asyncio.sleep(self.poke_interval)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        url, container, prefix = _where(self.landing)
        try:
            await self._wait(url, container, prefix)
            yield TriggerEvent({"status": "success", "message": f"export run arrived in {url}"})
        except Exception as exc:  # the sensor fails with it (execute_complete)
            yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})
