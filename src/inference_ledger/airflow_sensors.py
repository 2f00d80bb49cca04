"""The billing ingest DAG's sensor: a complete Cost Management export run has arrived in Azure
Storage since the last sync (imported by the DAG file; needs the Microsoft Azure provider).

`ExportRunSensor` is the provider's `WasbPrefixSensor` with the condition a ledger needs:
not "some blob exists under the prefix" (true forever after the first export) but "a manifest
under `<prefix>/billing/` that is new since the last sync, whose blobs are all there at the
byte counts it states" (`remote.pending_runs`). Cost Management writes the manifest last, so
a run still being written never fires it. The provider's deferrable trigger only checks that
a prefix exists, so this sensor pokes in `reschedule` mode instead: between pokes it holds no
worker slot, like a deferred task. On a local landing it succeeds at once (the schedule is the
signal). Credentials come from the Airflow connection (`wasb_conn_id`, default
`wasb_default`): a connection string, account key, SAS token or managed identity in its
extras, never in the repository.
"""

from __future__ import annotations

import json
import os
from typing import Any

from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
from airflow.providers.microsoft.azure.sensors.wasb import WasbPrefixSensor

from inference_ledger.ingest import remote


class ExportRunSensor(WasbPrefixSensor):
    """Succeeds when a complete export run not synced yet is under the landing URL."""

    template_fields = (*WasbPrefixSensor.template_fields, "landing")

    def __init__(self, *, landing: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(container_name="", prefix="", deferrable=False, **kwargs)
        self.landing = landing

    def _landing_url(self) -> str:
        return (self.landing or "").strip() or os.environ.get("LEDGER_LANDING", "")

    def poke(self, context: Any) -> bool:
        from inference_ledger.settings import load_settings

        url = self._landing_url()
        if not remote.is_remote(url):
            self.log.info("landing %s is a local folder: nothing to wait for", url or "(default)")
            return True
        container, prefix = remote.container_and_prefix(url)
        hook = WasbHook(wasb_conn_id=self.wasb_conn_id, public_read=self.public_read)
        client = hook.get_conn().get_container_client(container)
        under = f"{prefix}/billing/" if prefix else "billing/"
        listing = {b.name: (b.size, b.etag) for b in client.list_blobs(name_starts_with=under)}
        ready, waiting = remote.pending_runs(
            listing,
            lambda name: json.loads(hook.read_file(container, name)),
            remote.sync_state(url, load_settings().home),
            prefix,
        )
        for name, why in sorted(waiting.items()):
            self.log.info("waiting for %s/%s: %s", container, name, why)
        if ready:
            self.log.info("complete export run(s) arrived: %s", ", ".join(ready))
        return bool(ready)
