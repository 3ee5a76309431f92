"""`cms-pipeline transform` as users run it (child processes): a build is published only
after its Soda gate passes, as in the flows (quality/promotion.build_gate_publish).

Data: the bundled sample_0 and one real inpatient row of sample_1 made into a new claim
that starts in 2015. Nothing in the dbt build rejects that date; the silver gate does
("dates within 2007-2010"), so an ungated transform would publish it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cms_pipeline.config import load_settings
from cms_pipeline.publish.publishing import published_build
from tests.conftest import SAMPLE_DATA, claim_from_2015

pytestmark = pytest.mark.integration

DATE_CHECK = "Claim, admission and discharge dates within 2007-2010"


def _cli(lake: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(CMS_SPARK_QUICK_JIT="true", CMS_SPARK_DRIVER_MEMORY="2g")
    return subprocess.run(
        [sys.executable, "-m", "cms_pipeline", *args, "--lake", str(lake), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def _tail(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def refused(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, str]:
    """sample_0 and the 2015 claim ingested, then `transform --layer silver`."""
    root = tmp_path_factory.mktemp("transform_cli")
    landing = root / "landing"
    shutil.copytree(SAMPLE_DATA / "sample_0", landing)
    claim = claim_from_2015(landing)
    lake = root / "lake"
    ingested = _cli(lake, "ingest", str(landing))
    assert ingested.returncode == 0, _tail(ingested)
    assert json.loads(ingested.stdout)["totals"]["rejected"] == 0  # its contract passes
    return _cli(lake, "transform", "--layer", "silver"), lake, claim


def test_a_build_that_fails_its_gate_exits_1_and_is_not_published(refused):
    done, lake, _claim = refused
    assert done.returncode == 1, _tail(done)
    summary = json.loads(done.stdout)
    [build] = summary["builds"]
    assert build["success"], build["error"]  # dbt built it; the gate refused it
    gate = summary["gates"]["silver"]
    assert gate["schema"] == build["schema"] and not gate["passed"]
    failed = {c["check"] for c in gate["checks"] if c["outcome"] == "fail"}
    assert DATE_CHECK in failed, failed
    assert summary["published"] == {}
    reason = summary["refused"]["silver"]
    assert reason.startswith("silver gate failed") and DATE_CHECK in reason
    assert reason.endswith("nothing is published as silver yet")
    assert published_build(load_settings(lake=str(lake)), "silver") is None


def test_the_failing_row_is_the_delivered_claim(refused):
    done, _lake, claim = refused
    gate = json.loads(done.stdout)["gates"]["silver"]
    [check] = [c for c in gate["checks"] if c["check"] == DATE_CHECK]
    assert check["value"] == 1  # the one claim of 2015, of all of sample_0's
    assert [row["claim_id"] for row in check["failed_rows"]] == [claim]
