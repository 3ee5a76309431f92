"""`cms-pipeline docs serve` as a child process (no JVM: the files `dbt docs generate`
writes are stand-ins here; integration/test_dbt_cluster.py serves real ones). It binds
the port itself, so `--port 0` can never lose its port to another process, and prints
the port it got."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cms_pipeline import processes

HOST = "127.0.0.1"
CLI = str(Path(sys.executable).parent / "cms-pipeline")
URL_LINE = r"Serving the dbt docs on http://127\.0\.0\.1:(\d+)/"


@pytest.fixture
def lake(tmp_path) -> Path:
    """A lake whose dbt target holds a docs site (CMS_PIPELINE_METADATA unset: the dbt
    folder is the lake's `_metadata/dbt`)."""
    lake = tmp_path / "lake"
    target = lake / "_metadata" / "dbt" / "target"
    target.mkdir(parents=True)
    (target / "index.html").write_text("<html><body>cms docs marker</body></html>")
    (target / "manifest.json").write_text(json.dumps({"nodes": {"model.x": {"name": "x"}}}))
    (target / "catalog.json").write_text(json.dumps({"nodes": {"model.x": {"columns": {}}}}))
    return lake


@pytest.fixture
def stranger():
    """A port another process holds while the test runs."""
    with socket.create_server((HOST, 0)) as sock:
        yield sock.getsockname()[1]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CMS_PIPELINE_METADATA"}


def test_port_0_serves_the_generated_site_on_the_port_it_prints(lake, stranger, tmp_path):
    argv = [CLI, "docs", "serve", "--lake", str(lake), "--port", "0"]
    server = processes.spawn("docs", argv, _env(), tmp_path / "docs.log", cwd=tmp_path)
    try:
        port = processes.wait_for_bound_port(server, 120, "docs serve", URL_LINE)
        assert port != stranger
        assert processes.listening_ports(server) == {port}
        base = f"http://{HOST}:{port}"
        target = lake / "_metadata" / "dbt" / "target"
        for name in ("index.html", "manifest.json", "catalog.json"):
            response = httpx.get(f"{base}/{name}", timeout=30)
            assert response.status_code == 200
            assert response.content == (target / name).read_bytes()
    finally:
        processes.stop_group(server, timeout=10)
    assert not processes.is_ours(server)


def test_a_taken_port_exits_1_naming_it(lake, stranger):
    argv = [CLI, "docs", "serve", "--lake", str(lake), "--port", str(stranger)]
    done = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    said = " ".join((done.stdout + done.stderr).split())  # Rich may wrap the line
    assert f"cannot listen on {HOST}:{stranger}" in said and "--port 0" in said


def test_without_generated_docs_it_names_what_is_missing(lake):
    (lake / "_metadata" / "dbt" / "target" / "catalog.json").unlink()
    argv = [CLI, "docs", "serve", "--lake", str(lake), "--port", "0"]
    done = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    said = " ".join((done.stdout + done.stderr).split())
    assert "catalog.json missing" in said and "cms-pipeline docs generate" in said
