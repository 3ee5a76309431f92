"""Local paths and object-store URIs behind one interface (fsspec), plus the options
delta-rs needs for the same location. Credentials come from the environment only.

Small state records (the lake's writer lease, per-file ingest claims) need four atomic
operations that plain fsspec does not offer; `create_exclusive`, `read_record`,
`replace_if` and `delete_if` give them on both kinds of storage:

- local disk: a record is written to a temporary file first and hard-linked into place
  (`os.link` fails when the name exists), so it appears whole or not at all; replacing
  or deleting one compares its content with what the caller read while holding an
  `fcntl.flock` on the folder's `.lock` file (the kernel drops the lock when its holder
  dies, so a crash can never leave it held).
- S3 and S3-compatible stores: one PUT with `If-None-Match: *` creates; a PUT or a
  DELETE with `If-Match: <ETag read>` replaces or deletes only the version the caller
  read. The store decides, so two hosts can race safely. (AWS S3 has conditional PUTs
  since 2024-08 and conditional DELETEs since 2025-09; MinIO, R2 and moto have them.)
- other fsspec stores (gs://, abfs://): exclusive create is one upload that the store
  refuses when the name exists (fsspec's `mode="create"`); replace and delete compare
  first and then act, which is not atomic between hosts.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import fsspec
from fsspec.asyn import sync

# Environment variables passed to delta-rs when present (endpoint for S3-compatible stores).
_DELTA_ENV = {
    "s3": [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ALLOW_HTTP",
    ],
    "gs": ["GOOGLE_SERVICE_ACCOUNT", "GOOGLE_APPLICATION_CREDENTIALS"],
    "abfs": ["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN"],
}

# Transient storage errors (throttling, 5xx, timeouts) are retried with backoff, by
# delta-rs (object_store's RetryConfig: 5xx, 429 and 408 responses, connection errors)
# and by s3fs (botocore's "standard" mode: throttling and 5xx codes).
MAX_RETRIES = 10
RETRY_TIMEOUT = "180s"  # object_store stops retrying one request after this long


def scheme(uri: str) -> str:
    return uri.split("://", 1)[0] if "://" in uri else "file"


def is_local(uri: str) -> bool:
    return scheme(uri) in ("file", "local")


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for a URI and the path within it."""
    if scheme(uri) in ("s3", "s3a"):
        client = {"endpoint_url": os.environ["AWS_ENDPOINT_URL"]}
        fs = fsspec.filesystem(
            "s3",
            client_kwargs=client if os.environ.get("AWS_ENDPOINT_URL") else {},
            config_kwargs={"retries": {"max_attempts": MAX_RETRIES, "mode": "standard"}},
        )
        return fs, uri.split("://", 1)[1]
    if scheme(uri) == "gs" and os.environ.get("STORAGE_EMULATOR_HOST"):
        # A GCS emulator takes no credentials (without "anon" google-auth would look for
        # some, up to the cloud metadata server) and has no Storage Control API, which
        # gcsfs's default class asks for each bucket's type (60 s each before it gives up).
        # Imported here: gcsfs is an optional extra (`cloud`), installed only for gs://.
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem(token="anon"), uri.split("://", 1)[1]
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def delta_storage_options(uri: str) -> dict[str, str] | None:
    """Options for deltalake at this URI, read from the environment (None when local).

    S3: delta-rs 1.x commits each log entry with a PUT in create mode, sent as
    `If-None-Match: *` (object_store's `conditional_put=etag`, set here explicitly): of two
    writers committing the same version one gets "already exists", checks for conflicts
    and commits on the next version. No rename is involved. `AWS_S3_ALLOW_UNSAFE_RENAME`
    is pinned to false because delta-rs also reads it from the environment; in 1.6.6 it
    only changes renames, which commits do not use (tests/unit/test_object_storage_
    concurrency.py checks what the commits send). A store without conditional PUTs
    needs `AWS_CONDITIONAL_PUT=disabled` (its commits then fail instead of racing).
    """
    kind = scheme(uri)
    if kind in ("file", "local"):
        return None
    opts = {k: os.environ[k] for k in _DELTA_ENV.get(kind, []) if os.environ.get(k)}
    opts.update({"max_retries": str(MAX_RETRIES), "retry_timeout": RETRY_TIMEOUT})
    if kind in ("s3", "s3a"):
        opts.setdefault("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
        opts["AWS_S3_ALLOW_UNSAFE_RENAME"] = "false"
        opts["conditional_put"] = os.environ.get("AWS_CONDITIONAL_PUT", "etag")
        if opts.get("AWS_ENDPOINT_URL", "").startswith("http://"):
            opts["AWS_ALLOW_HTTP"] = "true"
    if kind in ("abfs", "abfss", "az") and os.environ.get("AZURE_STORAGE_CONNECTION_STRING"):
        opts.update(_azure_connection_options(os.environ["AZURE_STORAGE_CONNECTION_STRING"]))
    return opts


def _azure_connection_options(connection_string: str) -> dict[str, str]:
    """delta-rs options from an Azure connection string, the one setting adlfs reads, so
    that one variable points both at the account (or at Azurite: its BlobEndpoint)."""
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    opts = {}
    if "AccountName" in parts:
        opts["AZURE_STORAGE_ACCOUNT_NAME"] = parts["AccountName"]
    if "AccountKey" in parts:
        opts["AZURE_STORAGE_ACCOUNT_KEY"] = parts["AccountKey"]
    if "SharedAccessSignature" in parts:
        opts["AZURE_STORAGE_SAS_TOKEN"] = parts["SharedAccessSignature"]
    if "BlobEndpoint" in parts:
        opts["AZURE_STORAGE_ENDPOINT"] = parts["BlobEndpoint"].rstrip("/")
        if parts["BlobEndpoint"].startswith("http://"):
            opts["AZURE_ALLOW_HTTP"] = "true"
    return opts


# -- small records with atomic create / compare-and-replace / compare-and-delete ----------


@dataclass(frozen=True)
class Record:
    data: bytes
    tag: str  # the stored version: S3 ETag, else a hash of the content
    modified: float  # when it was last written (epoch seconds; the store's clock)


def _content_tag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _is_s3(uri: str) -> bool:
    return scheme(uri) in ("s3", "s3a")


def create_exclusive(uri: str, data: bytes) -> str | None:
    """Write `data` at `uri` whole, unless something is there already. Returns the new
    record's tag, or None when there was one."""
    fs, path = filesystem(uri)
    if is_local(uri):
        return _content_tag(data) if _local_create(path, data) else None
    try:
        if _is_s3(uri):
            bucket, key, _ = fs.split_path(path)
            response = fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
            return response["ETag"]
        # One upload with the store's create-only condition (GCS `ifGenerationMatch=0`,
        # Azure `If-None-Match: *`): the store decides. (gcsfs's open("xb") starts a
        # resumable upload, whose condition fake-gcs-server ignores.)
        fs.pipe_file(path, data, mode="create")
        return _content_tag(data)
    except FileExistsError:
        return None
    except OSError as exc:
        if _s3_code(exc) in _S3_CONDITION_FAILED:
            return None
        raise
    finally:
        fs.invalidate_cache(path)


def read_record(uri: str) -> Record | None:
    """The record at `uri` with its version tag, or None when there is none."""
    fs, path = filesystem(uri)
    if is_local(uri):
        try:
            with open(path, "rb") as f:
                data, st = f.read(), os.fstat(f.fileno())
        except FileNotFoundError:
            return None
        return Record(data, _content_tag(data), st.st_mtime)
    if _is_s3(uri):
        return _s3_read(fs, path)
    try:
        data, modified = fs.cat_file(path), fs.modified(path).timestamp()
    except FileNotFoundError:
        return None
    return Record(data, _content_tag(data), modified)


def replace_if(uri: str, data: bytes, tag: str) -> str | None:
    """Overwrite the record at `uri` only if it is still the version `tag`. Returns the
    new version's tag, or None when the record is another version or gone."""
    fs, path = filesystem(uri)
    if is_local(uri):
        with _folder_lock(path):
            current = read_record(uri)
            if current is None or current.tag != tag:
                return None
            os.replace(_write_temp(path, data), path)  # readers see the old or the new
            return _content_tag(data)
    if _is_s3(uri):
        response = _s3_conditional(fs, "put_object", path, IfMatch=tag, Body=data)
        return None if response is None else response["ETag"]
    current = read_record(uri)
    if current is None or current.tag != tag:
        return None
    fs.pipe_file(path, data)
    return _content_tag(data)


def delete_if(uri: str, tag: str) -> bool:
    """Delete the record at `uri` only if it is still the version `tag`."""
    fs, path = filesystem(uri)
    if is_local(uri):
        with _folder_lock(path):
            current = read_record(uri)
            if current is None or current.tag != tag:
                return False
            os.unlink(path)
            return True
    if _is_s3(uri):
        return _s3_conditional(fs, "delete_object", path, IfMatch=tag) is not None
    current = read_record(uri)
    if current is None or current.tag != tag:
        return False
    fs.rm_file(path)
    return True


def _write_temp(path: str, data: bytes) -> str:
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def _local_create(path: str, data: bytes) -> bool:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = _write_temp(path, data)
    try:
        os.link(tmp, path)  # atomic and exclusive: the name appears with its whole content
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


@contextmanager
def _folder_lock(path: str) -> Iterator[None]:
    fd = os.open(os.path.join(os.path.dirname(path), ".lock"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _s3_code(exc: BaseException) -> str | None:
    """The S3 error code behind an s3fs exception (s3fs keeps botocore's as the cause)."""
    for err in (exc, exc.__cause__, exc.__context__):
        response = getattr(err, "response", None)
        if isinstance(response, dict) and response.get("Error"):
            return str(response["Error"].get("Code"))
    return None


def _s3_read(fs, path: str) -> Record | None:
    bucket, key, _ = fs.split_path(path)

    async def get():
        # body, ETag and time from one GET: the tag is the version whose bytes we read
        response = await fs._call_s3("get_object", Bucket=bucket, Key=key)
        async with response["Body"] as body:
            data = await body.read()
        return Record(data, response["ETag"], response["LastModified"].timestamp())

    try:
        return sync(fs.loop, get)
    except FileNotFoundError:
        return None


# A condition that did not hold (412), or a concurrent conditional write of the key (409)
_S3_CONDITION_FAILED = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


def _s3_conditional(fs, operation: str, path: str, **kwargs) -> dict | None:
    """The response of a conditional S3 call, or None if its condition did not hold."""
    bucket, key, _ = fs.split_path(path)
    try:
        return fs.call_s3(operation, Bucket=bucket, Key=key, **kwargs)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if _s3_code(exc) in _S3_CONDITION_FAILED:
            return None
        raise
    finally:
        fs.invalidate_cache(path)
