"""A landing zone on Azure Storage (`abfs://`, `az://`) or Amazon S3 (`s3://`) as an incremental
local mirror that the ingest reads like any landing folder.

Cost Management writes its exports into an Azure Storage container; other clouds' FOCUS
exports land in S3 or GCS. Discovery, manifests and checksums need the files' bytes, and
Spark on one machine needs local paths, so `sync` copies into `$LEDGER_HOME/landing-mirror/`
what is new or changed since the last sync (by size and ETag; nothing is copied twice), each
file verified after the copy (its size, and its Content-MD5 where the store has one) and moved
into place whole. What a half-written export run looks like is then judged by the same rules
as a local landing: blobs without their manifest (Cost Management writes the manifest last)
are named and not read, a run whose blobs disagree with its manifest's counts is rejected and
the previous good run stays. Files deleted from the store stay in the mirror (a month-to-date
run removed by a retention policy is superseded anyway).

Each copy is checked against the store: its size, its Content-MD5 where Azure has one, and
that the object did not change while it was copied (its ETag listed again afterwards; an S3
ETag is not an MD5 for multipart or KMS-encrypted objects, so it is compared, never hashed).
The mirrored file keeps the object's last-modified time: a FOCUS folder run or an AWS export
run is submitted when its newest file was written to the store, not when it was synced.

Credentials come from the environment only, as the fsspec backends read them. Azure (`adlfs`):
`AZURE_STORAGE_CONNECTION_STRING`, or `AZURE_STORAGE_ACCOUNT_NAME` with
`AZURE_STORAGE_ACCOUNT_KEY` / `AZURE_STORAGE_SAS_TOKEN`, else the default Azure credential
chain (managed identity, workload identity, Azure CLI); the identity needs read access to the
export container only (Storage Blob Data Reader). S3 (`s3fs`): botocore's chain
(`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, `AWS_PROFILE`, an
instance or pod role; `AWS_ENDPOINT_URL_S3` for an S3-compatible store); the identity needs
`s3:ListBucket` on the bucket (for the prefix) and `s3:GetObject` on the prefix's objects.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
_CHUNK = 8 * 1024 * 1024


def is_remote(landing: str | os.PathLike) -> bool:
    """A URL of an object store (any scheme but file://), not a local folder."""
    m = _SCHEME.match(str(landing))
    return bool(m) and m.group(1).lower() != "file"


def filesystem(url: str):
    """(fsspec filesystem, path within it) for an object-store URL: a fresh client each time,
    so its endpoint and credentials are read from the environment now."""
    import fsspec

    return fsspec.core.url_to_fs(url, skip_instance_cache=True)


def mirror_path(url: str, home: Path) -> Path:
    """Where a store's landing is mirrored: readable, one folder per URL."""
    parts = urlsplit(url)
    where = [parts.scheme, parts.netloc, *[p for p in parts.path.split("/") if p]]
    safe = [re.sub(r"[^A-Za-z0-9._@=-]", "_", p) for p in where]
    return home / "landing-mirror" / Path(*safe)


@dataclass
class SyncResult:
    url: str
    mirror: Path
    copied: list[str] = field(default_factory=list)
    unchanged: int = 0

    def summary(self) -> str:
        return (
            f"synced {self.url} -> {self.mirror}: {len(self.copied)} file(s) copied,"
            f" {self.unchanged} unchanged"
        )


def _fingerprint(info: dict) -> dict:
    """What says a stored object changed: its size and ETag (last-modified where a store
    gives no ETag)."""
    etag = info.get("etag") or info.get("ETag") or str(info.get("last_modified") or "")
    return {"size": int(info.get("size") or 0), "etag": str(etag).strip('"')}


def _content_md5(info: dict) -> bytes | None:
    md5 = (info.get("content_settings") or {}).get("content_md5")
    return bytes(md5) if md5 else None


def _copy_verified(fs, remote: str, info: dict, dest: Path) -> str:
    """Copy one object to `dest` through a temporary file, verify it, move it into place;
    returns its SHA-256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with fs.open(remote, "rb") as src, tmp.open("wb") as out:
        while chunk := src.read(_CHUNK):
            out.write(chunk)
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    expected_md5 = _content_md5(info)
    wrong = []
    if size != int(info.get("size") or 0):
        wrong.append(f"{size} bytes copied, the store lists {info.get('size')}")
    if expected_md5 is not None and md5.digest() != expected_md5:
        wrong.append("its MD5 differs from the store's Content-MD5")
    fs.invalidate_cache(remote)  # a listing cached by the client would hide a change
    after = _fingerprint(fs.info(remote))
    if after != _fingerprint(info):
        wrong.append("the object changed while it was copied (synced on the next run)")
    if wrong:
        tmp.unlink(missing_ok=True)
        raise OSError(f"{remote}: copy not verified: {'; '.join(wrong)}")
    modified = _modified(info)
    if modified is not None:
        os.utime(tmp, (modified, modified))
    os.replace(tmp, dest)
    return sha.hexdigest()


def _modified(info: dict) -> float | None:
    """The object's last-modified time (POSIX seconds) as the store lists it."""
    value = info.get("last_modified") or info.get("LastModified") or info.get("mtime")
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        from datetime import datetime

        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.timestamp()


def _state_file(mirror: Path) -> Path:
    """The sync's state, beside the mirror (never inside the landing it mirrors)."""
    return mirror.with_name(f"{mirror.name}.sync.json")


def _read_state(mirror: Path) -> dict:
    state_file = _state_file(mirror)
    return json.loads(state_file.read_text()) if state_file.is_file() else {}


def sync(url: str, mirror: Path, fs=None) -> SyncResult:
    """Copy what is new or changed under `url` into `mirror` (see the module docstring)."""
    if fs is None:
        fs, root = filesystem(url)
    else:
        root = fs._strip_protocol(url)
    root = root.rstrip("/")
    state_file = _state_file(mirror)
    state = _read_state(mirror)
    result = SyncResult(url, mirror)
    listing = fs.find(root, detail=True)
    for remote, info in sorted(listing.items()):
        if info.get("type") == "directory" or remote.endswith("/"):
            continue
        rel = remote[len(root) :].lstrip("/")
        if not rel or any(p in ("", ".", "..") for p in rel.split("/")):
            continue
        dest = mirror / rel
        seen = _fingerprint(info)
        known = state.get(rel)
        if known and {k: known[k] for k in seen} == seen and dest.is_file():
            result.unchanged += 1
            continue
        state[rel] = {**seen, "sha256": _copy_verified(fs, remote, info, dest)}
        result.copied.append(rel)
        # Saved after each copy: an interrupted sync resumes where it stopped.
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(state, indent=1, sort_keys=True))
    mirror.mkdir(parents=True, exist_ok=True)
    log.info("%s", result.summary())
    return result


# Azure Storage through adlfs (tested against Azurite), S3 through s3fs (tested against moto's
# server). Other fsspec stores (gs://) would sync the same way but are refused until tested.
AZURE_SCHEMES = ("abfs", "abfss", "az")
S3_SCHEMES = ("s3", "s3a")
SUPPORTED_SCHEMES = AZURE_SCHEMES + S3_SCHEMES


def local_landing(landing: str | os.PathLike, home: Path) -> Path:
    """The folder the ingest reads: `landing` itself, or the synced mirror of a store URL."""
    from inference_ledger.ingest.records import InputError

    if not is_remote(landing):
        text = str(landing)
        return Path(text[len("file://") :] if text.lower().startswith("file://") else text)
    url = str(landing)
    if scheme(url) not in SUPPORTED_SCHEMES:
        raise InputError(
            f"landing {url}: {scheme(url)}:// is not supported; object-store landings are Azure"
            f" Storage or S3 URLs ({', '.join(s + '://' for s in SUPPORTED_SCHEMES)})"
        )
    result = sync(url, mirror_path(url, home))
    print(result.summary(), file=sys.stderr)  # the user sees what came from the store
    return result.mirror


# ---------------------------------------------------------------- waiting for export runs


def scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()


def container_and_prefix(url: str) -> tuple[str, str]:
    """(container or bucket, prefix) of a landing URL: `abfs://<container>/<prefix>`,
    `abfs[s]://<container>@<account>.dfs.core.windows.net/<prefix>` (also `az://`, `wasb://`),
    `s3://<bucket>/<prefix>`."""
    parts = urlsplit(url)
    container = parts.netloc.split("@", 1)[0]
    return container, parts.path.strip("/")


def sync_state(url: str, home: Path) -> dict:
    """What the last sync of `url` copied: relative path -> size, ETag, SHA-256."""
    return _read_state(mirror_path(url, home))


def _blob_listed(manifest: str, blob_name: str, listing: dict) -> str | None:
    """The listed object a manifest's blobName means: the name itself (a container path), or
    its trailing parts below the manifest's folder (a landing that does not mirror the whole
    container path)."""
    parts = [p for p in blob_name.replace("\\", "/").split("/") if p]
    if "/".join(parts) in listing:
        return "/".join(parts)
    folder = manifest.rsplit("/", 1)[0]
    for j in range(len(parts)):
        candidate = "/".join([folder, *parts[j:]])
        if candidate in listing:
            return candidate
    return None


_MANIFEST_NAMES = ("manifest.json", "_manifest.json")
_AWS_MANIFEST_SUFFIX = "-Manifest.json"  # AWS Data Exports: <export>-Manifest.json
_AWS_PARTITION = re.compile(r"(^|/)data/BILLING_PERIOD=\d{4}-\d{2}/")


def _is_manifest(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base in _MANIFEST_NAMES or base.endswith(_AWS_MANIFEST_SUFFIX)


def _fresh(listing: dict[str, tuple[int, str]], synced: dict, prefix: str) -> set[str]:
    """Objects new or changed since the last sync (by size and ETag)."""
    base = f"{prefix}/" if prefix else ""
    out = set()
    for name, (size, etag) in listing.items():
        known = synced.get(name[len(base) :]) or {}
        if not (known.get("etag") == str(etag).strip('"') and known.get("size") == size):
            out.add(name)
    return out


def _is_billing(name: str, prefix: str) -> bool:
    return name[len(f"{prefix}/" if prefix else "") :].startswith("billing/")


def manifests_to_read(listing: dict[str, tuple[int, str]], synced: dict, prefix: str) -> list[str]:
    """The manifests under `<prefix>/billing/` whose folder holds an object new or changed
    since the last sync: the only ones `pending_runs` needs read."""
    fresh = _fresh(listing, synced, prefix)
    return [
        name
        for name in sorted(listing)
        if _is_billing(name, prefix)
        and _is_manifest(name)
        and any(n.startswith(name.rsplit("/", 1)[0] + "/") for n in fresh)
    ]


def _key_listed(manifest: str, uri: str, listing: dict) -> str | None:
    """The listed object an AWS manifest's `dataFiles` URI (`s3://<bucket>/<key>`) means: its
    key, or the longest tail of it below a folder above the manifest."""
    key = urlsplit(uri).path.lstrip("/") if "://" in uri else uri.lstrip("/")
    if key in listing:
        return key
    parts = [p for p in key.split("/") if p]
    folders = manifest.split("/")[:-1]
    for depth in range(len(folders), -1, -1):
        for j in range(len(parts)):
            candidate = "/".join([*folders[:depth], *parts[j:]])
            if candidate in listing:
                return candidate
    return None


def _not_there(name: str, doc: object, listing: dict) -> list[str] | None:
    """What a manifest lists that is not there whole (blobs short of their byte count, data
    files absent); None when the manifest says nothing readable yet."""
    if isinstance(doc, dict) and isinstance(doc.get("dataFiles"), list):
        return [
            f"{uri} not there"
            for uri in doc["dataFiles"]
            if _key_listed(name, str(uri), listing) is None
        ]
    blobs = doc.get("blobs") if isinstance(doc, dict) else None
    if not isinstance(blobs, list):
        return None
    found = [_blob_listed(name, str(b.get("blobName", "")), listing) for b in blobs]
    return [
        f"{b.get('blobName')} not there"
        if f is None
        else f"{f}: {listing[f][0]} of {b['byteCount']} bytes"
        for b, f in zip(blobs, found, strict=True)
        if f is None or (b.get("byteCount") is not None and listing[f][0] != int(b["byteCount"]))
    ]


def pending_runs(
    listing: dict[str, tuple[int, str]],
    manifests: dict[str, object],
    synced: dict,
    prefix: str,
) -> tuple[list[str], dict[str, str]]:
    """Export runs under `<prefix>/billing/` that arrived complete since the last sync:
    (manifests and FOCUS folder files ready to ingest, {manifest: why it is still waiting}).

    `listing` maps object name -> (size, ETag); `manifests` maps each of `manifests_to_read`
    to its parsed JSON (None when it could not be parsed); `synced` is `sync_state`. A
    manifest is ready when its folder changed since the last sync and every blob it lists is
    there at the byte count it states. A data file under billing/focus with no manifest in
    its folders (a FOCUS folder run) is ready when it is new or changed.
    """
    fresh = _fresh(listing, synced, prefix)
    manifest_dirs = {n.rsplit("/", 1)[0] for n in listing if _is_manifest(n)}
    ready, waiting = [], {}
    for name in manifests_to_read(listing, synced, prefix):
        wrong = _not_there(name, manifests.get(name), listing)
        if wrong is None:
            waiting[name] = "manifest not readable yet"
        elif wrong:
            waiting[name] = "; ".join(wrong)
        else:
            ready.append(name)
    focus = f"{prefix}/billing/focus/" if prefix else "billing/focus/"
    # An AWS export's data files count only through their manifest (written after them).
    ready += sorted(
        n
        for n in fresh
        if n.startswith(focus)
        and not any(n.startswith(d + "/") for d in manifest_dirs)
        and not _AWS_PARTITION.search(n)
        and not _is_manifest(n)
    )
    return ready, waiting


def parse_manifest(text: str) -> object:
    """A manifest's JSON, or None while it is not (yet) valid JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return None
