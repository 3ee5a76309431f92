"""The CMS downloader against a local HTTP server that serves real-sample ZIPs and injects faults."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import struct
import threading
import time
import zipfile
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cms_pipeline import download as dl
from cms_pipeline.cli import app
from cms_pipeline.config import load_settings
from cms_pipeline.synth.layout import FILE_KINDS

SLOW_SECONDS = 30.0  # a stalled answer: far beyond any attempt's timeout
RETRY_AFTER = 7  # seconds a 429 asks for


class FaultServer:
    """Serves `files` by name; `plan[name]` lists what the next requests get:
    ok, 404, 500, 429 (Too Many Requests, Retry-After: RETRY_AFTER), reset (connection
    reset), truncate (half the body, then reset), slow (waits SLOW_SECONDS before
    answering), norange (ignores Range)."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.plan: dict[str, list[str]] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def finish(self):
                try:
                    super().finish()
                except OSError:
                    pass

            def _reset(self):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.connection.close()

            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                steps = server.plan.get(name) or []
                step = steps.pop(0) if steps else "ok"
                if step == "slow":
                    time.sleep(SLOW_SECONDS)
                    step = "ok"
                if name not in server.files or step == "404":
                    self.send_error(404)
                    return
                if step == "500":
                    self.send_error(500)
                    return
                if step == "429":
                    self.send_response(429)
                    self.send_header("Retry-After", str(RETRY_AFTER))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if step == "reset":
                    self._reset()
                    return
                body, start = server.files[name], 0
                rng = self.headers.get("Range")
                if rng and step != "norange":
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                rest = body[start:]
                self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
                if step == "truncate":
                    self.wfile.write(rest[: len(rest) // 2])
                    self.wfile.flush()
                    self._reset()
                    return
                self.wfile.write(rest)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def hits(self, name: str) -> list[str | None]:
        return [r for n, r in self.requests if n == name]


def _zip_of(csv_path: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(csv_path, csv_path.name)
    return buf.getvalue()


@pytest.fixture(scope="module")
def fixture_zips() -> dict[str, bytes]:
    """CMS-named ZIPs built from the real sample files (sample_2 is already zipped)."""
    from cms_pipeline.config import PROJECT_ROOT

    data = PROJECT_ROOT / "data" / "synpuf"
    zips = {p.name: p.read_bytes() for p in sorted((data / "sample_2").glob("*.zip"))}
    for p in sorted((data / "sample_1").glob("*.csv")):
        zips[p.with_suffix(".zip").name] = _zip_of(p)
    return zips


@pytest.fixture
def server(fixture_zips):
    srv = FaultServer(dict(fixture_zips))
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def items_for(server: FaultServer, names: list[str]) -> list[dl.DownloadItem]:
    return [dl.DownloadItem(1, "inpatient", server.url(n)) for n in names]


FAST = dl.RetryPolicy(attempts=4, backoff_seconds=0.01, timeout_seconds=5)
IP1 = "DE1_0_2008_to_2010_Inpatient_Claims_Sample_1.zip"
IP2 = "DE1_0_2008_to_2010_Inpatient_Claims_Sample_2.zip"
BENE2 = "DE1_0_2008_Beneficiary_Summary_File_Sample_2.zip"


def test_parallel_download_with_ledger(server, landing):
    names = [IP1, IP2, BENE2]
    results = dl.download(items_for(server, names), landing, FAST, parallel=3)
    assert [r["status"] for r in results] == ["downloaded"] * 3
    ledger = json.loads((landing / dl.LEDGER_NAME).read_text())
    for name in names:
        body = server.files[name]
        assert (landing / name).read_bytes() == body
        assert ledger[name]["sha256"] == hashlib.sha256(body).hexdigest()
        assert ledger[name]["size"] == len(body)
    assert not list((landing / dl.PARTIAL_DIR).iterdir())


def test_nothing_is_fetched_twice(server, landing):
    dl.download(items_for(server, [IP1]), landing, FAST)
    before = len(server.requests)
    again = dl.download(items_for(server, [IP1]), landing, FAST)
    assert again[0]["status"] == "skipped" and len(server.requests) == before
    (landing / IP1).write_bytes(b"changed")  # size no longer matches the ledger: fetch again
    third = dl.download(items_for(server, [IP1]), landing, FAST)
    assert third[0]["status"] == "downloaded"
    assert (landing / IP1).read_bytes() == server.files[IP1]


def test_retries_with_backoff_after_reset_and_500(server, landing):
    server.plan[IP1] = ["reset", "500", "ok"]
    waits: list[float] = []
    (result,) = dl.download(items_for(server, [IP1]), landing, FAST, sleep=waits.append)
    assert result["status"] == "downloaded" and result["attempts"] == 3
    # exponential, each with up to one backoff of jitter (threads retrying at once spread)
    b = FAST.backoff_seconds
    assert len(waits) == 2 and b <= waits[0] <= 2 * b and 2 * b <= waits[1] <= 3 * b, waits
    assert (landing / IP1).read_bytes() == server.files[IP1]


def test_too_many_requests_waits_as_long_as_the_server_asks(server, landing):
    server.plan[IP1] = ["429", "500", "ok"]
    waits: list[float] = []
    (result,) = dl.download(items_for(server, [IP1]), landing, FAST, sleep=waits.append)
    assert result["status"] == "downloaded" and result["attempts"] == 3
    b = FAST.backoff_seconds
    assert waits[0] == RETRY_AFTER and 2 * b <= waits[1] <= 3 * b, waits
    assert (landing / IP1).read_bytes() == server.files[IP1]


def test_retry_after_is_a_delay_or_a_date():
    now = datetime(2026, 12, 8, 12, 0, 0, tzinfo=UTC)
    assert dl.retry_after_seconds("120", now) == 120.0
    assert dl.retry_after_seconds("Tue, 08 Dec 2026 12:01:30 GMT", now) == 90.0
    assert dl.retry_after_seconds("Tue, 08 Dec 2026 11:00:00 GMT", now) == 0.0  # passed
    assert dl.retry_after_seconds("soon", now) is None  # our own backoff then
    assert dl.retry_after_seconds(None, now) is None


def test_404_fails_at_once(server, landing):
    server.plan[IP1] = ["404"]
    waits: list[float] = []
    (result,) = dl.download(items_for(server, [IP1]), landing, FAST, sleep=waits.append)
    assert result["status"] == "failed" and result["attempts"] == 1 and "404" in result["error"]
    assert waits == [] and not (landing / IP1).exists()
    assert not (landing / dl.LEDGER_NAME).exists()


def test_truncated_body_resumes_with_a_range_request(server, landing):
    server.plan[IP1] = ["truncate", "ok"]
    (result,) = dl.download(items_for(server, [IP1]), landing, FAST, sleep=lambda s: None)
    assert result["status"] == "downloaded" and result["attempts"] == 2
    first, second = server.hits(IP1)
    assert first is None
    resumed_at = int(second.split("=")[1].rstrip("-"))
    assert 0 < resumed_at < len(server.files[IP1])
    assert (landing / IP1).read_bytes() == server.files[IP1]


def test_slow_response_times_out_then_succeeds(server, landing):
    # the timeout that cuts the stalled attempt also bounds the retry that should succeed:
    # generous for that one on a busy machine, a fraction of the stall
    server.plan[IP1] = ["slow", "ok"]
    policy = dl.RetryPolicy(attempts=3, backoff_seconds=0.01, timeout_seconds=SLOW_SECONDS / 10)
    (result,) = dl.download(items_for(server, [IP1]), landing, policy)
    assert result["status"] == "downloaded" and result["attempts"] == 2


def test_incomplete_file_never_appears_in_landing(server, landing):
    server.plan[IP1] = ["truncate", "500", "500"]
    policy = dl.RetryPolicy(attempts=3, backoff_seconds=0.0, timeout_seconds=5)
    (result,) = dl.download(items_for(server, [IP1]), landing, policy)
    assert result["status"] == "failed" and 0 < result["bytes"] < len(server.files[IP1])
    assert not (landing / IP1).exists()
    assert (landing / dl.PARTIAL_DIR / f"{IP1}.part").exists()
    # a later run resumes from the partial file
    (again,) = dl.download(items_for(server, [IP1]), landing, policy)
    assert again["status"] == "downloaded"
    assert server.hits(IP1)[-1] == f"bytes={result['bytes']}-"
    assert (landing / IP1).read_bytes() == server.files[IP1]


def test_server_ignoring_range_restarts_cleanly(server, landing):
    part = landing / dl.PARTIAL_DIR / f"{IP1}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes from an older file")
    server.plan[IP1] = ["norange"]
    (result,) = dl.download(items_for(server, [IP1]), landing, FAST)
    assert result["status"] == "downloaded"
    assert (landing / IP1).read_bytes() == server.files[IP1]


def test_bytes_that_are_not_a_zip_are_refused(server, landing):
    server.files["broken.zip"] = b"<html>maintenance page</html>"
    policy = dl.RetryPolicy(attempts=2, backoff_seconds=0.0, timeout_seconds=5)
    (result,) = dl.download(items_for(server, ["broken.zip"]), landing, policy)
    assert result["status"] == "failed" and "not a ZIP" in result["error"]
    assert not (landing / "broken.zip").exists()


def test_download_list_covers_20_samples_with_cms_names():
    cfg = dl.load_download_config()
    settings = load_settings()
    assert sorted(cfg.urls) == list(range(1, 21))
    for sample, files in cfg.urls.items():
        assert sorted(files) == sorted(k.key for k in FILE_KINDS)
        for kind, url in files.items():
            item = dl.DownloadItem(sample, kind, url)
            assert url.startswith("https://") and url.endswith(".zip")
            contract, attrs = settings.contract_for(item.name)
            assert attrs["sample"] == str(sample) and attrs["ext"] == "zip"
            assert item.name == next(k for k in FILE_KINDS if k.key == kind).file_name(
                sample, "zip"
            )


def test_parse_samples_and_files():
    assert dl.parse_samples("1-3,7, 9") == [1, 2, 3, 7, 9]
    assert dl.parse_files("beneficiary,carrier") == [
        "bene_2008", "bene_2009", "bene_2010", "carrier_a", "carrier_b",
    ]  # fmt: skip
    assert dl.parse_files(None) == [k.key for k in FILE_KINDS]
    with pytest.raises(ValueError, match="unknown file kind"):
        dl.parse_files("dental")


def test_cli_download_with_progress(server, landing, tmp_path):
    config = tmp_path / "downloads.yaml"
    urls = {"inpatient": server.url(IP2), "bene_2008": server.url(BENE2)}
    config.write_text(yaml.safe_dump({
        "retry": {"attempts": 3, "backoff_seconds": 0.01, "timeout_seconds": 5},
        "parallel": 2, "samples": {2: urls},
    }))  # fmt: skip
    server.plan[IP2] = ["500"]
    args = ["download", "--samples", "2", "--files", "inpatient,beneficiary", "--to",
            str(landing), "--config", str(config), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2  # bene_2009 and 2010 have no URL in this list
    assert "no URL" in result.output
    args[4] = "inpatient"  # the first try gets a 500, the retry succeeds
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert [(f["status"], f["attempts"]) for f in summary["files"]] == [("downloaded", 2)]
    assert (landing / IP2).read_bytes() == server.files[IP2]
