"""Azurite (the Azure Storage emulator, from the npm registry) on 127.0.0.1 for the tests.

`.ci/run` installs it under `.tools/` (`make azurite`); elsewhere the tests that need it skip
unless LEDGER_TEST_REQUIRE_AZURITE=1, which CI sets so that they run there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Azurite's documented development account (public, the same in every installation).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def azurite_binary() -> str | None:
    local = ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    if local.is_file():
        return str(local)
    return shutil.which("azurite-blob")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


@contextlib.contextmanager
def azurite(workdir: Path):
    """A blob service on 127.0.0.1 for the block; yields its connection string."""
    binary = azurite_binary()
    if binary is None:
        if os.environ.get("LEDGER_TEST_REQUIRE_AZURITE") == "1":
            pytest.fail("azurite-blob not found: run `make azurite` (npm install under .tools/)")
        pytest.skip("azurite-blob not installed (make azurite)")
    port = _free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
         "--skipApiVersionCheck", "--loose", "--silent"],
        cwd=workdir,  # its debug and extent files, if any, stay in the test's folder
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"azurite-blob did not start on 127.0.0.1:{port}")
            time.sleep(0.2)
        yield connection_string(port)
    finally:
        # In-memory storage has nothing to flush, and Azurite's graceful close on SIGTERM
        # takes ~11 s even with no client connected (measured): 10 s of idle teardown a test.
        proc.kill()
        proc.wait(10)


def blob_fs(conn: str):
    """An adlfs filesystem on the emulator (what `abfs://` URLs resolve to with the
    connection string in the environment)."""
    from adlfs import AzureBlobFileSystem

    return AzureBlobFileSystem(connection_string=conn)


def upload_tree(fs, local: Path, container_path: str) -> list[str]:
    """Every file under `local` uploaded below `container_path` (`<container>/<prefix>`)."""
    container = container_path.split("/", 1)[0]
    if not fs.exists(container):
        fs.mkdir(container)
    names = []
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        name = f"{container_path}/{path.relative_to(local).as_posix()}"
        fs.pipe_file(name, path.read_bytes())
        names.append(name)
    return names
