"""The dashboard (`cms-pipeline web`) in a real headless Chromium (Debian's `chromium`,
driven by Playwright), over the session lake's first pipeline run: every view is opened
and photographed, and the numbers it renders are compared with the published gold
tables read through Spark. Keyboard use and the charts' accessible names are checked too.

The screenshots are saved under the pytest temporary folder, printed at the end.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
NO_BROWSER = (
    f"Debian's chromium is not installed ({CHROMIUM}): the dashboard tests need it. "
    "Run scripts/bootstrap as root (it installs it with apt-get), or "
    "`apt-get install -y chromium`."
)


def money(value) -> str:
    return f"${float(value):,.2f}"


def number(value) -> str:
    return f"{int(value):,}"


def per_1000(value) -> str:
    """A utilisation rate as the page shows it: gold's decimal(., 2), or a dash for none."""
    return "–" if value is None else f"{float(value):,.2f}"


def _luminance(colour: str) -> float:
    """WCAG relative luminance of "#rrggbb" or "rgb(r,g,b)"."""
    if colour.startswith("#"):
        channels = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    else:
        channels = [int(v) for v in re.findall(r"\d+", colour)[:3]]
    linear = [
        c / 255 / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4
        for c in channels
    ]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def rendered_rate(text: str) -> float:
    """A rate the page shows ("12.34%") as a fraction."""
    return float(text.rstrip("%")) / 100


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(NO_BROWSER)
        pytest.skip(NO_BROWSER)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    return tmp_path_factory.mktemp("dashboard_screenshots")


def start_web(lake: str, log: Path):
    """`cms-pipeline web --port 0 --json --lake LAKE` as a child process: it binds a free
    port itself and prints its URL; returns the process and that URL."""
    from cms_pipeline.processes import listening_ports, spawn, wait_until

    argv = [str(Path(sys.executable).parent / "cms-pipeline"), "web", "--port", "0", "--json"]
    argv += ["--lake", lake]
    proc = spawn("web", argv, {**os.environ}, log, cwd=Path.cwd())
    wait_until(lambda: bool(listening_ports(proc)), proc, 120, "the dashboard server")
    (port,) = listening_ports(proc)
    url = f"http://127.0.0.1:{port}/"
    wait_until(lambda: url in log.read_text(), proc, 30, "the dashboard's address")
    line = next(line for line in log.read_text().splitlines() if line.startswith("{"))
    assert json.loads(line)["url"] == url  # the address it prints is the one served
    return proc, url


@pytest.fixture(scope="module")
def web(first_run, spark_settings, tmp_path_factory):
    from cms_pipeline.processes import stop_group

    assert first_run["ok"], first_run["reason"]
    proc, url = start_web(spark_settings.lake, tmp_path_factory.mktemp("web") / "web.log")
    try:
        yield url
    finally:
        stop_group(proc)


@pytest.fixture(scope="module")
def page(browser, web, spark_settings):
    from cms_pipeline.exports import exported_build
    from cms_pipeline.publish.publishing import published_build

    # the exports the page reads are those of the published gold compared with below
    assert exported_build(spark_settings) == published_build(spark_settings, "gold")["build_id"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("requestfailed", lambda request: errors.append(f"request failed: {request.url}"))
    tab.goto(web)
    tab.wait_for_selector("body[data-ready=true]", timeout=60_000)
    yield tab
    assert not errors, errors
    context.close()


def shoot(page, screenshots: Path, name: str, selector: str | None = None) -> Path:
    path = screenshots / f"{name}.png"
    if selector:
        page.locator(selector).screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    return path


def text(page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def test_nothing_is_missing_and_the_page_is_whole(page, screenshots):
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#missing").is_hidden()
    shoot(page, screenshots, "00_dashboard")


def test_pmpm_by_state_and_year_equals_gold(page, spark, screenshots):
    pmpm = spark.table("gold.pmpm_by_state_year")
    last_year = pmpm.agg({"beneficiary_year": "max"}).first()[0]
    rows = pmpm.where(f"beneficiary_year = {last_year}").collect()
    assert rows
    biggest = max(rows, key=lambda r: (r.beneficiary_count, r.state_code))
    page.select_option("#costs-year", str(last_year))
    page.select_option("#costs-measure", "medicare_paid_pmpm")
    table_rows = page.locator("#costs-table tbody tr")
    assert table_rows.count() == len(rows)
    row = f"#costs-table tr[data-state-code='{biggest.state_code}']"
    assert text(page, f"{row} th") == biggest.state
    assert text(page, f"{row} td[data-col=beneficiary_count]") == number(biggest.beneficiary_count)
    assert text(page, f"{row} td[data-col=member_months]") == number(biggest.member_months)
    assert text(page, f"{row} td[data-col=medicare_paid_amount]") == money(
        biggest.medicare_paid_amount
    )
    assert text(page, f"{row} td[data-col=medicare_paid_pmpm]") == money(biggest.medicare_paid_pmpm)
    # the tile map: one tile per state of the year, its label and value from gold
    tiles = page.locator("#costs-map svg g[data-state]")
    assert tiles.count() == len(rows)
    tile = page.locator(f"#costs-map g[data-state='{biggest.state}'] title")
    assert tile.text_content().endswith(money(biggest.medicare_paid_pmpm))
    shoot(page, screenshots, "01_costs", "#costs")
    # another measure and an earlier year
    first_year = pmpm.agg({"beneficiary_year": "min"}).first()[0]
    early = pmpm.where(f"beneficiary_year = {first_year}").orderBy("state_code").first()
    page.select_option("#costs-year", str(first_year))
    page.select_option("#costs-measure", "inpatient_pmpm")
    cell = f"#costs-table tr[data-state-code='{early.state_code}'] td[data-col=inpatient_pmpm]"
    assert text(page, cell) == money(early.inpatient_pmpm)


# utilisation measure -> its count and the member months of the Part that pays for it
UTILISATION = {
    "inpatient_admissions_per_1000_mm": ("inpatient_admission_count", "part_a_member_months"),
    "inpatient_claims_per_1000_mm": ("inpatient_claim_count", "part_a_member_months"),
    "inpatient_days_per_1000_mm": ("inpatient_days", "part_a_member_months"),
    "outpatient_claims_per_1000_mm": ("outpatient_claim_count", "part_b_member_months"),
    "carrier_claims_per_1000_mm": ("carrier_claim_count", "part_b_member_months"),
    "drug_events_per_1000_mm": ("pde_claim_count", "part_d_member_months"),
}


def test_utilisation_per_1000_member_months_equals_gold(page, spark, screenshots):
    pmpm = spark.table("gold.pmpm_by_state_year")
    last_year = pmpm.agg({"beneficiary_year": "max"}).first()[0]
    rows = pmpm.where(f"beneficiary_year = {last_year}").collect()
    assert sum(r.inpatient_admission_count for r in rows) > 0, "no admissions in gold"
    page.select_option("#costs-year", str(last_year))
    offered = page.locator("#costs-measure optgroup[label^='Utilisation'] option")
    assert sorted(offered.nth(i).get_attribute("value") for i in range(offered.count())) == (
        sorted(UTILISATION)
    )
    for measure, (events, months) in UTILISATION.items():
        page.select_option("#costs-measure", measure)
        assert page.locator("#costs-table tbody tr").count() == len(rows)
        shown = [r for r in rows if getattr(r, events)] or rows
        # every state with events of this kind (all states when none has any)
        for r in shown:
            row = f"#costs-table tr[data-state-code='{r.state_code}']"
            assert text(page, f"{row} td[data-col={events}]") == number(getattr(r, events))
            assert text(page, f"{row} td[data-col={months}]") == number(getattr(r, months))
            rate = getattr(r, measure)
            assert text(page, f"{row} td[data-col={measure}]") == per_1000(rate), (measure, r)
            # gold's rate is its count per 1,000 of its months, both in the row
            if getattr(r, months):
                expected = getattr(r, events) * 1000 / getattr(r, months)
                assert abs(float(rate) - expected) <= 0.005, (measure, r)
            else:
                assert rate is None
        biggest = max(rows, key=lambda r: (getattr(r, events), r.state_code))
        tile = page.locator(f"#costs-map g[data-state='{biggest.state}'] title")
        assert tile.text_content().endswith(per_1000(getattr(biggest, measure)))
        if measure == "inpatient_admissions_per_1000_mm":
            shoot(page, screenshots, "01_utilisation", "#costs")
    page.select_option("#costs-measure", "medicare_paid_pmpm")


def test_readmission_rates_equal_gold(page, spark, screenshots):
    rates = spark.table("gold.readmission_rates")
    overall = rates.where("state_code = 'ALL' and specialty_cohort = 'ALL'").collect()
    assert overall
    # the chart: one column per discharge year, each naming gold's rate
    chart = page.locator("#readmissions-chart svg g")
    assert chart.count() == len(overall)
    latest = max(overall, key=lambda r: r.discharge_year)
    page.select_option("#readmissions-year", str(latest.discharge_year))
    row = "#readmissions-cohorts tr[data-cohort='ALL']"
    assert text(page, f"{row} td[data-col=index_admission_count]") == number(
        latest.index_admission_count
    )
    assert text(page, f"{row} td[data-col=readmission_count]") == number(latest.readmission_count)
    shown = rendered_rate(text(page, f"{row} td[data-col=readmission_rate]"))
    assert abs(shown - float(latest.readmission_rate)) <= 0.00005  # shown to 0.01 %
    cohorts = rates.where(
        f"discharge_year = {latest.discharge_year} and state_code = 'ALL' "
        "and specialty_cohort != 'ALL'"
    ).collect()
    assert page.locator("#readmissions-cohorts tbody tr").count() == len(cohorts) + 1
    cohort = max(cohorts, key=lambda r: (r.index_admission_count, r.specialty_cohort))
    row = f"#readmissions-cohorts tr[data-cohort='{cohort.specialty_cohort}']"
    assert text(page, f"{row} td[data-col=readmission_count]") == number(cohort.readmission_count)
    shown = rendered_rate(text(page, f"{row} td[data-col=readmission_rate]"))
    assert abs(shown - float(cohort.readmission_rate)) <= 0.00005
    states = rates.where(
        f"discharge_year = {latest.discharge_year} and state_code != 'ALL' "
        "and specialty_cohort = 'ALL'"
    ).collect()
    assert page.locator("#readmissions-states tbody tr").count() == len(states)
    one = max(states, key=lambda r: (r.index_admission_count, r.state_code))
    row = f"#readmissions-states tr[data-state-code='{one.state_code}']"
    assert text(page, f"{row} td[data-col=index_admission_count]") == number(
        one.index_admission_count
    )
    shoot(page, screenshots, "02_readmissions", "#readmissions")


@pytest.mark.parametrize(
    ("table", "view", "code"),
    [
        ("top_diagnoses_by_cost", "diagnoses", "icd9_dgns_cd"),
        ("top_procedures_by_cost", "procedures", "icd9_prcdr_cd"),
    ],
)
def test_top_codes_equal_gold(page, spark, screenshots, table, view, code):
    top = spark.table(f"gold.{table}").where("claim_type = 'inpatient'")
    first = top.where("cost_rank = 1").first()
    assert first is not None, f"gold.{table} has no inpatient rows"
    page.select_option("#codes-claim-type", "inpatient")
    page.select_option("#codes-limit", "10")
    assert page.locator(f"#{view}-table tbody tr").count() == min(top.count(), 10)
    row = page.locator(f"#{view}-table tbody tr").first
    assert row.locator("[data-col=code]").inner_text().strip() == getattr(first, code)
    assert row.locator("td[data-col=description]").inner_text().strip() == (
        first.description or "(no CMS description)"
    )
    assert row.locator("td[data-col=total_payment_amount]").inner_text().strip() == money(
        first.total_payment_amount
    )
    assert row.locator("td[data-col=claim_count]").inner_text().strip() == number(first.claim_count)
    shoot(page, screenshots, f"03_top_{view}", f"#{view}-table")
    if view == "procedures":
        shoot(page, screenshots, "03_top_codes", "#codes")


def test_model_scores_and_cards_equal_gold_and_the_registry(
    page, spark, spark_settings, screenshots
):
    from models_ml.registry import show_model

    latest = sorted(
        t.name.removeprefix("predictions_").removesuffix("_latest")
        for t in spark.catalog.listTables("gold")
        if t.name.startswith("predictions_") and t.name.endswith("_latest")
    )
    assert latest, "the session's first run scored no use case"
    shown = page.locator("#models-list article[data-use-case]")
    assert sorted(shown.nth(i).get_attribute("data-use-case") for i in range(shown.count())) == (
        latest
    )
    for use_case in latest:
        box = f"#model-{use_case}"
        rows = spark.table(f"gold.predictions_{use_case}_latest").count()
        assert text(page, f"{box} [data-col=scored_rows]") == number(rows)
        bars = page.locator(f"{box} svg g title")
        counts = [int(bars.nth(i).text_content().rsplit(": ", 1)[1]) for i in range(bars.count())]
        assert sum(counts) == rows  # the histogram holds every scored row once
        # the champion's version and test metrics, as the registry has them, and its card
        shown = show_model(spark_settings, use_case)
        champion = next(v for v in shown["versions"] if v["version"] == shown["champion"])
        caption = page.locator(f"{box} .model-card caption").inner_text()
        assert caption.startswith(f"Champion version {shown['champion']}:")
        metrics = page.locator(f"{box} .model-card tbody tr[data-metric]")
        assert metrics.count() == len(champion["metrics"]) > 0
        for name, value in champion["metrics"].items():
            cell = page.locator(f"{box} tr[data-metric='{name}'] td")
            shown = number(value) if float(value).is_integer() else f"{value:.4f}"
            assert cell.inner_text().strip() == shown, name
        link = page.locator(f"{box} a.card-link")
        assert link.count() == 1, page.locator(box).inner_text()
        card = page.frame_locator(f"{box} iframe.card-frame").locator("body")
        assert use_case in card.inner_text(timeout=30_000)
    shoot(page, screenshots, "04_models", "#models")


def test_beneficiary_lookup_by_keyboard_equals_gold(page, spark, screenshots):
    from pyspark.sql import functions as F

    years = spark.table("gold.beneficiary_year")
    person = (
        years.groupBy("desynpuf_id")
        .agg(F.count("*").alias("n"))
        .orderBy(F.desc("n"), "desynpuf_id")
        .first()
    )
    expected = years.where(F.col("desynpuf_id") == person.desynpuf_id).orderBy("beneficiary_year")
    expected = expected.collect()
    # reach the lookup field with the keyboard only, from the top of the page
    page.evaluate("window.scrollTo(0, 0); document.activeElement && document.activeElement.blur()")
    page.locator("body").focus()
    for _press in range(200):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "lookup-id":
            break
    else:
        pytest.fail("Tab never reached the DESYNPUF_ID field")
    assert page.locator("label[for=lookup-id]").inner_text() == "DESYNPUF_ID"
    page.keyboard.type(person.desynpuf_id)
    page.keyboard.press("Enter")
    page.wait_for_selector("#lookup-years")
    rows = page.locator("#lookup-years tbody tr")
    assert [int(rows.nth(i).get_attribute("data-year")) for i in range(rows.count())] == [
        r.beneficiary_year for r in expected
    ]
    for r in expected:
        row = f"#lookup-years tr[data-year='{r.beneficiary_year}']"
        assert text(page, f"{row} td[data-col=medicare_paid_amount]") == money(
            r.medicare_paid_amount
        )
        assert text(page, f"{row} td[data-col=member_months]") == number(r.member_months)
    shoot(page, screenshots, "05_lookup", "#lookup")
    # an id not in the export: said so, nothing else shown
    page.fill("#lookup-id", "NOT0A0BENEFICIARY")
    page.keyboard.press("Enter")
    page.wait_for_selector("#lookup-result .error")
    assert "NOT0A0BENEFICIARY" in text(page, "#lookup-result")


def test_every_chart_has_an_accessible_name(page):
    charts = page.locator("svg")
    named = page.get_by_role("img", name=re.compile(r"\S"))
    assert charts.count() >= 4  # map, readmissions, diagnoses, procedures, + histograms
    assert named.count() == charts.count()
    for i in range(charts.count()):
        labelled = charts.nth(i).get_attribute("aria-labelledby")
        assert labelled
        assert all(page.locator(f"[id='{ref}']").count() == 1 for ref in labelled.split())
    # every tile's label against its tile: WCAG AA contrast (4.5:1)
    pairs = page.evaluate(
        """[...document.querySelectorAll('#costs-map g[data-state]')].map((g) =>
            [g.querySelector('rect').getAttribute('fill'),
             g.querySelector('text').getAttribute('fill')])"""
    )
    assert pairs
    for fill, ink in pairs:
        assert contrast(fill, ink) >= 4.5, (fill, ink)
    for select in page.locator("select, input").all():
        assert page.locator(f"label[for='{select.get_attribute('id')}']").count() == 1
    for table in page.locator("table").all():
        assert table.locator("th").count() > 0


def test_an_empty_lake_says_which_exports_are_missing(browser, tmp_path, screenshots):
    from cms_pipeline.processes import stop_group

    lake = tmp_path / "empty_lake"
    proc, url = start_web(str(lake), tmp_path / "web.log")
    try:
        tab = browser.new_page()
        tab.goto(url)
        tab.wait_for_selector("body[data-ready=true]", timeout=60_000)
        assert tab.locator("#missing").is_visible()
        missing = tab.locator("#missing-list li")
        assert missing.count() >= 5
        assert "cms-pipeline run" in tab.locator("#missing-list").inner_text()
        assert str(lake) in tab.locator("#missing-list").inner_text()
        assert "cms-pipeline run" in tab.locator("#costs-map").inner_text()
        shoot(tab, screenshots, "06_empty_lake")
        tab.close()
    finally:
        stop_group(proc)


def test_screenshots_are_kept(screenshots, capsys):
    taken = sorted(p.name for p in screenshots.glob("*.png"))
    with capsys.disabled():
        print(f"\ndashboard screenshots ({len(taken)}): {screenshots}")
    assert taken
