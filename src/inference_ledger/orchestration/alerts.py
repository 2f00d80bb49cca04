"""The nightly DAG's deadline alert."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from inference_ledger.settings import load_settings

log = logging.getLogger(__name__)


async def deadline_missed(context: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
    """DeadlineAlert callback (runs in the triggerer): the nightly run is late.

    Logs an error naming the DAG run; when `$LEDGER_ALERT_WEBHOOK_URL` is set (from the
    deployment's .env, never in code), also POSTs a JSON message to it (Slack/Teams style
    incoming webhook: `{"text": ...}`).
    """
    import asyncio

    ctx = dict(context or {})
    dag_run = ctx.get("dag_run") or {}
    ident = (
        dag_run.get("run_id") if isinstance(dag_run, Mapping) else getattr(dag_run, "run_id", None)
    )
    text = (
        f"inference-ledger: {kwargs.get('what', 'a DAG run')} missed its deadline ({ident or ctx})"
    )
    log.error("%s", text)
    url = load_settings().alert_webhook_url
    if url:
        await asyncio.to_thread(_post_json, url, {"text": text})


def _post_json(url: str, body: Mapping[str, Any]) -> None:
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (configured URL)
        response.read()
