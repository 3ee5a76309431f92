"""`cms-pipeline web`'s server (cms_pipeline/web/) without Spark: path cleaning,
no way out of the export folders, helpful 404s, the beneficiary index and the score
histogram, over real HTTP on a port of its own."""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from cms_pipeline.web.dashboard import STATIC_DIR, Dashboard, histogram
from cms_pipeline.web.paths import clean_relative
from cms_pipeline.web.server import make_server


@pytest.mark.parametrize(
    "path",
    [
        "../secret",
        "a/../../secret",
        "%2e%2e/secret",
        "%2E%2E%2Fsecret",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "a\\..\\b",
        "a%5C..%5Cb",
        "a%00b",
        "C:/Windows",
        "",
        "./",
    ],
)
def test_paths_that_could_leave_a_folder_are_refused(path):
    assert clean_relative(path) is None


def test_clean_paths_keep_their_parts():
    assert clean_relative("years/2009.json") == "years/2009.json"
    assert clean_relative("./years//2009.json") == "years/2009.json"
    assert clean_relative("tables/top%20x.json") == "tables/top x.json"


def test_histogram_counts_every_score_once():
    bins = histogram([0.0, 0.049, 0.05, 0.5, 0.999, 1.0], bins=20)
    assert len(bins) == 20 and sum(b["count"] for b in bins) == 6
    assert bins[0]["count"] == 2 and bins[1]["count"] == 1 and bins[10]["count"] == 1
    assert bins[19]["count"] == 2  # 1.0 falls in the last bin
    assert bins[0]["low"] == 0.0 and bins[-1]["high"] == 1.0


@pytest.fixture
def lake_exports(settings, tmp_path):
    """A lake with a few web exports written the way cms_pipeline.exports writes them,
    a scoring export, and a secret file beside the exports folder."""
    web = Path(settings.lake) / "exports" / "web"
    (web / "years").mkdir(parents=True)
    (web / "years" / "2009.json").write_text(json.dumps({"year": 2009, "states": []}))
    profiles = web / "beneficiaries"
    profiles.mkdir()
    people = [
        {"desynpuf_id": f"{i:016X}", "years": [{"beneficiary_year": 2008 + i % 3}]}
        for i in range(50)
    ]
    for part in range(2):
        lines = [json.dumps(p, separators=(",", ":")) for p in people[part::2]]
        (profiles / f"part-0000{part}-x.json").write_text("\n".join(lines) + "\n")
    (profiles / "_SUCCESS").write_text("")
    (Path(settings.lake) / "exports" / "secret.txt").write_text("not for the web")
    (Path(settings.lake) / "exports" / "web" / "link.json").symlink_to(
        Path(settings.lake) / "exports" / "secret.txt"
    )
    ml = settings.metadata_path("exports", "ml")
    ml.mkdir(parents=True)
    scores = [0.05, 0.15, 0.15, 0.95]
    (ml / "predictions_demo.json").write_text(
        json.dumps(
            {
                "use_case": "demo",
                "model_version": "3",
                "rows": 4,
                "scored_at": "2026-01-01T00:00:00+00:00",
                "as_of": "2009-12-31",
                "predictions": [
                    {"desynpuf_id": "X", "score": s, "predicted_label": int(s > 0.5)}
                    for s in scores
                ],
            }
        )
    )
    return settings, people


@pytest.fixture
def served(lake_exports):
    """The dashboard's server on a free port, in a thread; yields a GET function that
    sends the path exactly as given (no client-side normalisation of `..`)."""
    settings, _ = lake_exports
    listener = socket.create_server(("127.0.0.1", 0))
    server = make_server(Dashboard(settings), listener)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = listener.getsockname()[1]

    def get(path: str, method: str = "GET"):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, dict(response.getheaders()), body

    yield get
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "path",
    [
        "/data/web/../secret.txt",
        "/data/web/%2e%2e/secret.txt",
        "/data/web/%2e%2e%2fsecret.txt",
        "/data/web/years/../../secret.txt",
        "/data/web/link.json",  # a symbolic link leading out of the folder
        "/data/ml/../../exports/secret.txt",
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/data/web//etc/passwd",
        "/data/web/%2fetc%2fpasswd",
    ],
)
def test_nothing_outside_the_served_folders_is_served(served, path):
    status, headers, body = served(path)
    assert status == 404, (path, body)
    assert b"not for the web" not in body and b"import" not in body
    assert headers["Content-Type"].startswith("application/json")


def test_a_missing_export_is_a_404_that_says_how_to_make_it(served, lake_exports):
    settings, _ = lake_exports
    status, _, body = served("/data/web/tables/readmission_rates.json")
    assert status == 404
    message = json.loads(body)
    assert "tables/readmission_rates.json" in message["error"]
    assert message["make"].startswith("cms-pipeline run") and settings.lake in message["make"]
    status, _, body = served("/data/ml/predictions_other.json")
    assert status == 404 and "cms-pipeline score" in json.loads(body)["make"]


def test_status_lists_what_exists_and_what_is_missing(served):
    status, _, body = served("/api/status")
    assert status == 200
    doc = json.loads(body)
    assert doc["exports"]["years"] == ["2009"]
    assert doc["exports"]["beneficiaries"] is True
    assert doc["exports"]["predictions"] == ["demo"]
    missing = {m["export"] for m in doc["missing"]}
    assert {"state summaries", "table readmission_rates", "table top_diagnoses_by_cost"} <= missing
    assert "year summaries" not in missing and "model scores" not in missing


def test_exports_and_the_page_are_served(served):
    status, headers, body = served("/data/web/years/2009.json")
    assert status == 200 and json.loads(body)["year"] == 2009
    assert headers["Cache-Control"] == "no-store"
    status, headers, body = served("/")
    assert status == 200 and b'<html lang="en">' in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for name in sorted(p.name for p in STATIC_DIR.iterdir()):
        status, _, body = served(f"/static/{name}")
        assert status == 200 and body == (STATIC_DIR / name).read_bytes()
    status, _, body = served("/", method="HEAD")
    assert status == 200 and body == b""


def test_the_page_loads_nothing_from_elsewhere():
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text and "//cdn" not in text, path.name


def test_writes_are_refused(served):
    for method in ("POST", "PUT", "DELETE"):
        status, _, _ = served("/data/web/years/2009.json", method=method)
        assert status == 501


def test_beneficiary_lookup_reads_one_line(served, lake_exports, monkeypatch):
    _, people = lake_exports
    for person in (people[0], people[1], people[-1]):
        status, _, body = served(f"/api/beneficiary/{person['desynpuf_id']}")
        assert status == 200 and json.loads(body) == person
    status, _, body = served("/api/beneficiary/FFFFFFFFFFFFFFFF")
    assert status == 404 and "FFFFFFFFFFFFFFFF" in json.loads(body)["error"]
    status, _, _ = served("/api/beneficiary/..%2f..%2fsecret")
    assert status in (400, 404)


def test_beneficiary_index_follows_a_new_export(served, lake_exports):
    settings, people = lake_exports
    wanted = people[4]["desynpuf_id"]
    assert served(f"/api/beneficiary/{wanted}")[0] == 200
    profiles = Path(settings.lake) / "exports" / "web" / "beneficiaries"
    for part in profiles.glob("part-*"):
        part.unlink()
    replacement = {"desynpuf_id": "NEW0000000000001", "years": []}
    path = profiles / "part-00000-y.json"
    path.write_text(json.dumps(replacement) + "\n")
    os.utime(path, (1, 1))
    assert served(f"/api/beneficiary/{wanted}")[0] == 404
    status, _, body = served("/api/beneficiary/NEW0000000000001")
    assert status == 200 and json.loads(body) == replacement


def test_scores_come_as_a_histogram(served):
    status, _, body = served("/api/scores/demo")
    assert status == 200
    doc = json.loads(body)
    assert doc["scored_rows"] == 4 and doc["positive_labels"] == 1
    assert doc["model_version"] == "3" and "predictions" not in doc
    counts = [b["count"] for b in doc["histogram"]]
    assert sum(counts) == 4 and counts[1] == 1 and counts[3] == 2 and counts[19] == 1
    status, _, body = served("/api/scores/nothing_here")
    assert status == 404 and "cms-pipeline" in json.loads(body)["make"]
    assert served("/api/scores/..%2f..")[0] == 404


def test_no_registry_is_a_404_naming_the_command(served):
    status, _, body = served("/api/models/demo")
    assert status == 404
    assert "cms-pipeline" in json.loads(body)["make"]
