"""moto's S3 server on 127.0.0.1 for the tests (moto is a test dependency, installed by
`make setup`): `s3://` URLs, s3fs and the Amazon provider's S3Hook reach it through
AWS_ENDPOINT_URL_S3 and test-only keys in the environment, as they would reach S3."""

from __future__ import annotations

import contextlib
import socket
import urllib.request

import pytest

REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_s3(monkeypatch: pytest.MonkeyPatch):
    """An S3 endpoint for the block; yields its URL. Each server starts empty."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its state per process, not per server: start each server from nothing.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_S3": endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield endpoint
    finally:
        server.stop()


def s3_fs():
    """An s3fs filesystem on the server (what `s3://` URLs resolve to with this environment)."""
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True)
