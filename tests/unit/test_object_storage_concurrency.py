"""Object storage without unsafe renames: conditional writes on a local S3-compatible
server (moto), two ingests into one lake at once (there and on local disk), the lease,
and retried 5xx errors.

moto answers `If-None-Match: *` and `If-Match` on PUT and `If-Match` on DELETE, but it
checks the condition and then writes without a lock, so two conditional PUTs of one key
at the same instant could both pass; S3 decides them atomically. The server here runs
moto's mutating requests one at a time, which gives S3's atomicity without changing what
moto answers. It can also answer every Nth request with a 503 SlowDown before moto sees
it, as S3 does when throttling.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import urllib.request
from collections import Counter

import boto3
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from cms_pipeline.config import PROJECT_ROOT, LeaseSettings, load_settings
from cms_pipeline.ingest import ingest, ledger
from cms_pipeline.ingest.discovery import discover
from cms_pipeline.lake import bronze_uri, quarantine_uri
from cms_pipeline.lease import Lease, LeaseBusy, current_holder, lake_lease, lease_uri
from cms_pipeline.storage import (
    create_exclusive,
    delete_if,
    delta_storage_options,
    read_record,
    replace_if,
)
from flows.watcher import hash_changed
from tests.conftest import SAMPLE_DATA
from tests.unit.test_ingest import data_lines
from tests.unit.test_lease import race

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class S3Gate:
    """WSGI middleware before moto: one mutating request at a time; optional 503s."""

    def __init__(self, app):
        self.app, self.lock, self.count_lock = app, threading.Lock(), threading.Lock()
        self.fail_every, self.requests, self.failed = 0, 0, Counter()  # failed: by method
        self.log_writes: list[tuple[str, str | None, str | None]] = []  # to _delta_log/

    def __call__(self, environ, start_response):
        if "/_delta_log/" in environ["PATH_INFO"] and environ["REQUEST_METHOD"] == "PUT":
            self.log_writes.append(
                (
                    environ["PATH_INFO"],
                    environ.get("HTTP_IF_NONE_MATCH"),
                    environ.get("HTTP_X_AMZ_COPY_SOURCE"),
                )
            )
        with self.count_lock:
            self.requests += 1
            fail = self.fail_every and self.requests % self.fail_every == 0
            if fail:
                self.failed[environ["REQUEST_METHOD"]] += 1
        if fail:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"].read(length)  # drain the body: the connection is reused
            start_response("503 Slow Down", [("Content-Type", "application/xml")])
            return [SLOW_DOWN]
        if environ["REQUEST_METHOD"] in ("PUT", "POST", "DELETE"):
            with self.lock:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


@pytest.fixture
def s3(monkeypatch):
    gate = S3Gate(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, gate, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset).close()  # moto's state lives in the process: start empty
    for key, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",  # an operator's leftover: must not be obeyed
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    for bucket in ("landing", "lake"):
        client.create_bucket(Bucket=bucket)
    yield client, gate
    urllib.request.urlopen(reset).close()  # and leave nothing for other tests
    server.shutdown()
    thread.join()


def s3_settings(lake: str = "s3://lake/cms"):
    settings = load_settings(lake=lake)
    return settings.model_copy(
        update={
            "ingest": settings.ingest.model_copy(update={"settle_seconds": 0.0}),
            "lease": LeaseSettings(wait_seconds=0.5, ttl_seconds=2),
        }
    )


def upload(client, files: list) -> list:
    for f in files:
        client.upload_file(str(f), "landing", f"synpuf/{f.name}")
    return files


SAMPLE_1 = sorted((SAMPLE_DATA / "sample_1").glob("*.csv"))  # real CMS CSVs, three kinds


def test_delta_commits_use_conditional_puts_not_unsafe_renames(s3):
    opts = delta_storage_options("s3://lake/t")
    assert opts["AWS_S3_ALLOW_UNSAFE_RENAME"] == "false"  # overrides the environment
    assert opts["conditional_put"] == "etag" and int(opts["max_retries"]) > 0


def test_conditional_writes_on_s3(s3):
    uri = "s3://lake/cms/_meta/lease/holder.json"
    tag = create_exclusive(uri, b"first")
    assert tag and create_exclusive(uri, b"second") is None  # If-None-Match: *
    record = read_record(uri)
    assert record.data == b"first" and record.tag == tag
    assert replace_if(uri, b"x", '"not-the-etag"') is None  # If-Match on PUT
    new_tag = replace_if(uri, b"renewed", tag)
    assert new_tag and read_record(uri).data == b"renewed"
    assert not delete_if(uri, tag)  # If-Match on DELETE: an older version is not deleted
    assert delete_if(uri, new_tag) and read_record(uri) is None


def test_the_lease_on_s3_has_one_holder(s3):
    settings = s3_settings()
    uri = lease_uri(settings)
    won = race(uri, 2)
    assert len(won) == 1
    won[0].release()
    dead = {"holder": "gone", "host": "another-host", "pid": 1, "started": 1.0, "token": "d"}
    for _ in range(3):  # racing takers of an expired lease: one wins each time
        create_exclusive(uri, json.dumps({**dead, "heartbeat": 0.0, "expires": 1.0}).encode())
        won = race(uri, 6)
        assert len(won) == 1
        won[0].release()
    with lake_lease(settings, "cms-pipeline ingest"):
        with lake_lease(settings, "prefect flow ingest"):  # re-entrant on S3 as well
            assert current_holder(settings)["holder"] == "cms-pipeline ingest"
        with pytest.raises(LeaseBusy, match="held by `cms-pipeline ingest`"):
            Lease(uri, "second writer", wait=0.3, notify=None).acquire()
    assert current_holder(settings) is None


# argv: lake, source, barrier folder, this process's number. Both processes import, then
# meet at the barrier (each writes its file and waits for the other's), so that their
# ingests start together; each prints when it was inside ingest().
INGEST = """
import json, sys, time
from pathlib import Path
from cms_pipeline.config import load_settings
from cms_pipeline.ingest import ingest
settings = load_settings(lake=sys.argv[1])
ingest_settings = settings.ingest.model_copy(update={"settle_seconds": 0.0})
barrier = Path(sys.argv[3])
(barrier / sys.argv[4]).touch()
while len(list(barrier.iterdir())) < 2:
    time.sleep(0.01)
started = time.time()
report = ingest(settings.model_copy(update={"ingest": ingest_settings}), sys.argv[2])
print(json.dumps({**report.to_dict(), "inside": [started, time.time()]}, default=str))
"""


def rows_by_hash(uri: str) -> Counter:
    dt = DeltaTable(uri, storage_options=delta_storage_options(uri))
    table = dt.to_pyarrow_table(columns=["_source_sha256", "_source_line"])
    shas, lines = table.column("_source_sha256").to_pylist(), table.column("_source_line")
    lines = Counter(zip(shas, lines.to_pylist(), strict=True))
    assert max(lines.values()) == 1, "a source line is in the table twice"
    return Counter(sha for sha, _ in lines)


def check_each_file_once(settings, files) -> dict[str, int]:
    """Bronze + quarantine rows of each file = its data lines, none twice; one ledger row."""
    done = ledger.read_ledger(settings)
    done = done.filter(pc.is_in(done.column("status"), value_set=pa.array(ledger.DONE)))
    per_hash = Counter(done.column("sha256").to_pylist())
    quarantined = (
        rows_by_hash(quarantine_uri(settings)) if _exists(quarantine_uri(settings)) else {}
    )
    bronze = {}
    for f in files:
        sha = hashlib.sha256(f.read_bytes()).hexdigest()
        table = settings.contract_for(f.name)[0].table
        bronze[f.name] = rows_by_hash(bronze_uri(settings, table))[sha]
        assert bronze[f.name] + quarantined.get(sha, 0) == data_lines(f), f.name
        assert per_hash[sha] == 1, f"{f.name}: {per_hash[sha]} ledger rows"
    assert len(per_hash) == len(files)
    return bronze


def _exists(uri: str) -> bool:
    try:
        DeltaTable(uri, storage_options=delta_storage_options(uri))
        return True
    except Exception:
        return False


def ingest_twice_at_once(lake: str, source: str, files: list, barrier) -> dict[str, int]:
    """Two processes ingest `source` into `lake` at once: each file is loaded by one and
    found done by the other; bronze rows of each file once. Returns them by file."""
    barrier.mkdir()
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", INGEST, lake, source, str(barrier), str(number)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
        )
        for number in range(2)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr[-3000:]
    reports = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    # the two ingests overlapped: each started before the other ended
    (start_a, end_a), (start_b, end_b) = (r["inside"] for r in reports)
    assert start_a < end_b and start_b < end_a, reports
    statuses = Counter()
    for report in reports:
        assert {f["file"] for f in report["files"]} == {f.name for f in files}
        statuses.update((f["file"], f["status"]) for f in report["files"])
    for f in files:  # loaded by one run; the other found it done (it waited on the claim)
        assert statuses[(f.name, "loaded")] == 1 and statuses[(f.name, "duplicate")] == 1
    bronze = check_each_file_once(load_settings(lake=lake), files)
    loaded = {f["file"]: f["rows_bronze"] for r in reports for f in r["files"] if f["status"] == "loaded"}  # fmt: skip
    assert bronze == loaded
    return bronze


def test_two_concurrent_ingests_on_s3_load_each_file_once(s3, tmp_path):
    client, gate = s3
    files = upload(client, SAMPLE_1)
    ingest_twice_at_once("s3://lake/cms", "s3://landing/synpuf", files, tmp_path / "barrier")
    commits = [w for w in gate.log_writes if w[0].endswith(".json")]
    assert commits and all(if_none_match == "*" for _, if_none_match, _ in commits)
    assert not any(copy for _, _, copy in gate.log_writes)  # no copy-then-delete "rename"


def test_two_concurrent_ingests_on_local_disk_load_each_file_once(tmp_path):
    lake, source = str(tmp_path / "lake"), str(SAMPLE_DATA / "sample_1")
    ingest_twice_at_once(lake, source, SAMPLE_1, tmp_path / "barrier")


def test_throttling_and_server_errors_are_retried(s3):
    client, gate = s3
    files = upload(client, SAMPLE_1[:2])
    settings = s3_settings()
    gate.fail_every = 7  # every 7th request, of any kind, gets 503 SlowDown
    with lake_lease(settings, "cms-pipeline ingest"):  # its renewals and release too
        report = ingest(settings, "s3://landing/synpuf")
    gate.fail_every = 0
    assert gate.failed["GET"] and gate.failed["PUT"], f"too few requests failed: {gate.failed}"
    assert not report.rejected and {f.status for f in report.files} == {"loaded"}
    check_each_file_once(settings, files)


def check_a_same_size_rewrite_is_seen(fs, landing: str) -> None:
    """The watcher on an object-store landing: an object rewritten with other bytes of the
    same size is hashed again (its stored version changed; objects have no mtime), and an
    object left alone is not."""
    real = SAMPLE_1[0]
    first = real.read_bytes()
    changed = first.replace(b",1,", b",2,", 1)  # a real row, one field other: same size
    assert changed != first and len(changed) == len(first)
    path = f"{landing.split('://', 1)[1]}/{real.name}"
    settings = s3_settings()
    fs.pipe_file(path, first)
    files, hashed = hash_changed(discover(settings, landing)[0], {})
    assert hashed == [real.name] and files[real.name]["version"]
    assert hash_changed(discover(settings, landing)[0], files)[1] == []  # left alone
    fs.pipe_file(path, changed)
    fs.invalidate_cache()
    again, rehashed = hash_changed(discover(settings, landing)[0], files)
    assert rehashed == [real.name]
    assert again[real.name]["sha256"] == hashlib.sha256(changed).hexdigest()


def test_the_watcher_sees_an_s3_object_rewritten_with_the_same_size(s3):
    from cms_pipeline.storage import filesystem

    fs, _ = filesystem("s3://landing")
    check_a_same_size_rewrite_is_seen(fs, "s3://landing/watched")
