"""The billing ingest DAG's sensor: a complete export run has arrived in the landing's object
store since the last sync -- a Cost Management run in Azure Storage (Microsoft Azure provider's
hooks) or an AWS Data Exports run in S3 (Amazon provider's `S3Hook`); imported by the DAG file.

`ExportRunSensor` does what the provider's `WasbPrefixSensor` does, through the provider's
hooks (`WasbHook`, `WasbAsyncHook`), with the condition a ledger needs: not "some blob exists
under the prefix" (true forever after the first export) but "a manifest under
`<prefix>/billing/` whose folder changed since the last sync and whose blobs are all there at
the byte counts it states" (`remote.pending_runs`). Cost Management writes the manifest last,
so a run still being written never fires it; AWS writes `<export>-Manifest.json` after the
data files it lists, so an S3 landing is judged the same way (every listed file present). It is
not a subclass of `WasbPrefixSensor` / `S3KeySensor`:
importing that pulls the Azure SDK into every DAG parse; the hooks are imported when the
sensor runs. Like the provider's sensor it is deferrable: after a first poke on the worker it
waits in the triggerer (`airflow_triggers.ExportRunTrigger`, the same check through the
provider's async hook), holding no worker slot. On a local landing it succeeds at once (the
schedule is the signal). Credentials come from the Airflow connection (`wasb_conn_id`,
default `wasb_default`: a connection string, account key, SAS token or managed identity in
its extras; `aws_conn_id`, default `aws_default`: keys, a role to assume or the default
credential chain, `endpoint_url` in its extras for an S3-compatible store), never in the
repository.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException


def _where(landing: str | None) -> tuple[str, str, str]:
    """(url, container, prefix) of the landing: the argument, else $LEDGER_LANDING."""
    from inference_ledger.ingest import remote
    from inference_ledger.settings import load_settings

    url = (landing or "").strip() or load_settings().landing or ""
    container, prefix = remote.container_and_prefix(url) if remote.is_remote(url) else ("", "")
    return url, container, prefix


def _synced(url: str) -> dict:
    from inference_ledger.ingest import remote
    from inference_ledger.settings import load_settings

    return remote.sync_state(url, load_settings().home)


def _billing_prefix(prefix: str) -> str:
    return f"{prefix}/billing/" if prefix else "billing/"


def _is_s3(url: str) -> bool:
    from inference_ledger.ingest import remote

    return remote.scheme(url) in remote.S3_SCHEMES


def _wasb_store(conn_id: str, public_read: bool, container: str, prefix: str):
    """(listing name -> (size, ETag), read(name) -> text) of a container, through WasbHook."""
    from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

    hook = WasbHook(wasb_conn_id=conn_id, public_read=public_read)
    box = hook.get_conn().get_container_client(container)
    listing = {
        b.name: (b.size, b.etag) for b in box.list_blobs(name_starts_with=_billing_prefix(prefix))
    }
    return listing, lambda name: box.download_blob(name).readall().decode("utf-8-sig")


def _s3_store(conn_id: str, bucket: str, prefix: str):
    """(listing key -> (size, ETag), read(key) -> text) of a bucket, through S3Hook."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=conn_id)
    listing = {
        o["Key"]: (o["Size"], o["ETag"])
        for o in hook.iter_file_metadata(prefix=_billing_prefix(prefix), bucket_name=bucket)
    }
    return listing, lambda key: hook.read_key(key, bucket).lstrip("\ufeff")


def _judge(log, container, listing, synced, prefix, docs) -> bool:
    from inference_ledger.ingest import remote

    ready, waiting = remote.pending_runs(listing, docs, synced, prefix)
    for name, why in sorted(waiting.items()):
        log.info("waiting for %s/%s: %s", container, name, why)
    if ready:
        log.info("complete export run(s) arrived in %s: %s", container, ", ".join(ready))
    return bool(ready)


class ExportRunSensor(BaseSensorOperator):
    """Succeeds when a complete export run not synced yet is under the landing URL."""

    template_fields = ("landing",)

    def __init__(
        self,
        *,
        landing: str | None = None,
        wasb_conn_id: str = "wasb_default",
        aws_conn_id: str = "aws_default",
        public_read: bool = False,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.landing = landing
        self.wasb_conn_id = wasb_conn_id
        self.aws_conn_id = aws_conn_id
        self.public_read = public_read
        self.deferrable = deferrable

    def poke(self, context: Any) -> bool:
        from inference_ledger.ingest import remote

        url, container, prefix = _where(self.landing)
        if not container:
            self.log.info("landing %s is a local folder: nothing to wait for", url or "(default)")
            return True
        if _is_s3(url):
            listing, read = _s3_store(self.aws_conn_id, container, prefix)
        else:
            listing, read = _wasb_store(self.wasb_conn_id, self.public_read, container, prefix)
        synced = _synced(url)
        docs = {
            name: remote.parse_manifest(read(name))
            for name in remote.manifests_to_read(listing, synced, prefix)
        }
        return _judge(self.log, container, listing, synced, prefix, docs)

    def execute(self, context: Any) -> None:
        if not self.deferrable:
            super().execute(context=context)
        elif not self.poke(context):
            from inference_ledger.airflow_triggers import ExportRunTrigger

            self.defer(
                timeout=timedelta(seconds=self.timeout),
                trigger=ExportRunTrigger(
                    landing=self.landing or "",
                    wasb_conn_id=self.wasb_conn_id,
                    poke_interval=self.poke_interval,
                    public_read=self.public_read,
                    aws_conn_id=self.aws_conn_id,
                ),
                method_name="execute_complete",
            )

    def execute_complete(self, context: Any, event: dict[str, str] | None = None) -> None:
        if not event or event.get("status") != "success":
            raise AirflowException((event or {}).get("message", "no event from the triggerer"))
        self.log.info(event["message"])
