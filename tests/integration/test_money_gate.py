"""The gold gate stops a delivery in which money goes missing, either way, through the CLI.

The delivery is built from real rows: the first BENEFICIARIES beneficiaries of the bundled
sample_1 (their three summary files and inpatient claims), with every second inpatient
claim of DROPPED_YEAR left out (the summary file says more than the claims: money lost)
and every inpatient claim of DOUBLED_YEAR delivered twice under a new claim id (the claims
say more than the summary: money counted twice). `cms-pipeline run` on it, in a fresh lake
of its own, must stop at the gold gate (exit 1), name both money checks of
soda_checks/gold/reconcile_summary_beneficiary_year.yml with the years that broke them,
and publish no gold. The same checks pass on every bundled sample as delivered
(tests/integration/test_pipeline.py, the session's first run).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_DATA, first_beneficiaries

pytestmark = pytest.mark.integration

BENEFICIARIES = 1000
DROPPED_YEAR = "2009"  # through-date year: claims count in the year of their through date
DOUBLED_YEAR = "2010"
SHORT_CHECK = "Claims short of the summary stay under 15% of it"
OVER_CHECK = "Claims beyond the summary stay under 5% of it"


def _read(path: Path) -> tuple[str, list[str], list[list[str]]]:
    """A CMS CSV as (line end, header, rows), the header's quotes kept for writing back."""
    data = path.read_bytes().decode()
    end = "\r\n" if "\r\n" in data else "\n"
    header, *lines = [line for line in data.split(end) if line]
    return end, header, [line.split(",") for line in lines]


def _claim_years(header: list[str], rows: list[list[str]]) -> dict[str, str]:
    """Each claim's through-date year, from the segment that carries the date (a split
    claim's segment 2 row has none)."""
    claim, thru = header.index("CLM_ID"), header.index("CLM_THRU_DT")
    return {row[claim]: row[thru][:4] for row in rows if row[thru]}


@pytest.fixture(scope="module")
def delivery(tmp_path_factory) -> dict:
    """The constructed landing folder, and what was done to it."""
    root = tmp_path_factory.mktemp("money_landing")
    kinds = ("Beneficiary_Summary_File", "Inpatient_Claims")
    written = first_beneficiaries(SAMPLE_DATA / "sample_1", BENEFICIARIES, kinds, root)

    [path] = [path for path in written if "Inpatient_Claims" in path.name]
    end, header, rows = _read(path)
    columns = next(csv.reader(io.StringIO(header)))
    years = _claim_years(columns, rows)
    claim = columns.index("CLM_ID")
    in_year = sorted({c for c, y in years.items() if y == DROPPED_YEAR})
    dropped = set(in_year[::2])
    doubled = {c for c, y in years.items() if y == DOUBLED_YEAR}
    copies = [[f"9{row[claim][1:]}" if i == claim else v for i, v in enumerate(row)]
              for row in rows if row[claim] in doubled]  # fmt: skip
    assert not {c[claim] for c in copies} & set(years), "a copy's new id is taken"
    kept = [row for row in rows if row[claim] not in dropped] + copies
    lines = [",".join(row) for row in kept]
    path.write_text(end.join([header, *lines]) + end, newline="")
    return {"landing": root, "dropped": dropped, "doubled": doubled}


@pytest.fixture(scope="module")
def failed_run(delivery, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    lake = tmp_path_factory.mktemp("money") / "lake"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(CMS_SPARK_QUICK_JIT="true", CMS_SPARK_DRIVER_MEMORY="2g")
    args = ["run", str(delivery["landing"]), "--lake", str(lake), "--train", "never", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "cms_pipeline", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    return done, lake


def _summary(done: subprocess.CompletedProcess) -> dict:
    text = "\n" + done.stdout  # the summary: the last object that starts a line
    return json.loads(text[text.rindex("\n{") + 1 :])


def test_the_constructed_delivery_loses_and_doubles_real_claims(delivery):
    assert len(delivery["dropped"]) > 10 and len(delivery["doubled"]) > 10


def test_money_lost_or_counted_twice_stops_the_gold_gate(failed_run):
    done, lake = failed_run
    tail = f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 1, tail
    summary = _summary(done)
    assert summary["stopped_at"] == "gold", tail
    reason = summary["reason"]
    assert reason.startswith("gold gate failed"), reason  # built, then refused by its gate
    assert SHORT_CHECK in reason and OVER_CHECK in reason, reason
    # every other check of every gate passed: the money checks alone stopped the run
    assert reason.count("measured") == 2, reason


def test_the_failing_rows_name_the_years_and_setting_that_broke(failed_run):
    from cms_pipeline.config import load_settings
    from cms_pipeline.quality.store import read_failed_rows

    done, lake = failed_run
    rows = read_failed_rows(load_settings(lake=str(lake))).to_pylist()
    by_check: dict[str, list[dict]] = {}
    for row in rows:
        for check in (SHORT_CHECK, OVER_CHECK):
            if row["check"].startswith(check):
                by_check.setdefault(check, []).append(json.loads(row["row"]))
    short = {(r["beneficiary_year"], r["setting"]) for r in by_check[SHORT_CHECK]}
    over = {(r["beneficiary_year"], r["setting"]) for r in by_check[OVER_CHECK]}
    assert short == {(int(DROPPED_YEAR), "inpatient")}, by_check[SHORT_CHECK]
    assert over == {(int(DOUBLED_YEAR), "inpatient")}, by_check[OVER_CHECK]


def test_no_gold_is_published_and_silver_is(failed_run):
    from cms_pipeline.config import load_settings
    from cms_pipeline.publish.publishing import published_build

    _, lake = failed_run
    settings = load_settings(lake=str(lake))
    assert published_build(settings, "gold") is None
    assert published_build(settings, "silver") is not None
