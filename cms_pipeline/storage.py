"""Local paths and object-store URIs behind one interface (fsspec), plus the options
delta-rs needs for the same location. Credentials come from the environment only."""

from __future__ import annotations

import os

import fsspec

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


def scheme(uri: str) -> str:
    return uri.split("://", 1)[0] if "://" in uri else "file"


def is_local(uri: str) -> bool:
    return scheme(uri) in ("file", "local")


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for a URI and the path within it."""
    if scheme(uri) == "s3" and os.environ.get("AWS_ENDPOINT_URL"):
        fs = fsspec.filesystem("s3", client_kwargs={"endpoint_url": os.environ["AWS_ENDPOINT_URL"]})
        return fs, uri.split("://", 1)[1]
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def delta_storage_options(uri: str) -> dict[str, str] | None:
    """Options for deltalake at this URI, read from the environment (None when local)."""
    kind = scheme(uri)
    if kind in ("file", "local"):
        return None
    opts = {k: os.environ[k] for k in _DELTA_ENV.get(kind, []) if os.environ.get(k)}
    if kind == "s3":
        opts.setdefault("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
        # Exactly-once is guaranteed by our own claim files and ledger, so delta-rs may
        # commit without a DynamoDB lock (conditional puts are used where the store has them).
        opts.setdefault("AWS_S3_ALLOW_UNSAFE_RENAME", "true")
        if opts.get("AWS_ENDPOINT_URL", "").startswith("http://"):
            opts["AWS_ALLOW_HTTP"] = "true"
    return opts
