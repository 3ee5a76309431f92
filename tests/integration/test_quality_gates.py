"""Quality gates on a small lake with injected defects: real Spark, real Soda, Delta results.

The lake is built here from a few beneficiaries and inpatient claims: bronze tables (text,
with lineage) and silver tables (typed, dbt's column names) hold the same records, and the
file ledger accounts for every bronze row, so a clean lake passes every gate. Each test
then changes one thing and looks for the check that must catch it.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal

import pytest

from cms_pipeline.config import load_settings
from cms_pipeline.ingest import ledger
from cms_pipeline.publish.builds import new_build_id
from cms_pipeline.publish.layers import build_schema
from cms_pipeline.publish.publishing import published_build, rollback
from cms_pipeline.publish.records import BuildResult, record_run
from cms_pipeline.quality import history, run_checks
from cms_pipeline.quality.promotion import LayerNotPublished, promote_if_passed
from cms_pipeline.quality.results import format_value
from cms_pipeline.quality.store import read_failed_rows, read_results

pytestmark = pytest.mark.integration

BENE_FILE = "DE1_0_{year}_Beneficiary_Summary_File_Sample_9.csv"
IP_FILE = "DE1_0_2008_to_2010_Inpatient_Claims_Sample_9.csv"
CHRONIC = [
    ("SP_ALZHDMTA", "has_alzheimers"), ("SP_CHF", "has_heart_failure"),
    ("SP_CHRNKIDN", "has_chronic_kidney_disease"), ("SP_CNCR", "has_cancer"),
    ("SP_COPD", "has_copd"), ("SP_DEPRESSN", "has_depression"), ("SP_DIABETES", "has_diabetes"),
    ("SP_ISCHMCHT", "has_ischemic_heart_disease"), ("SP_OSTEOPRS", "has_osteoporosis"),
    ("SP_RA_OA", "has_rheumatoid_osteo_arthritis"), ("SP_STRKETIA", "has_stroke_tia"),
]  # fmt: skip
SILVER_BENEFICIARY = (
    "desynpuf_id string, beneficiary_year int, birth_date date, death_date date, "
    "sex_code string, sex string, race_code string, race string, has_esrd boolean, "
    "state_code string, state string, county_code string, part_a_coverage_months int, "
    "part_b_coverage_months int, hmo_coverage_months int, part_d_coverage_months int, "
    + ", ".join(f"{name} boolean" for _, name in CHRONIC)
    + ", medicare_ip_amount decimal(12,2), medicare_op_amount decimal(12,2), "
    "medicare_carrier_amount decimal(12,2), age int, chronic_condition_count int, "
    "_source_file string, _source_line bigint, _batch_id string"
)
SILVER_INPATIENT = (
    "desynpuf_id string, claim_id string, segment int, claim_start_date date, "
    "claim_end_date date, provider_id string, payment_amount decimal(12,2), "
    "admission_date date, discharge_date date, drg_code string, sample string, "
    "_source_file string, _source_line bigint, _batch_id string"
)


def beneficiaries() -> list[dict]:
    """Three beneficiaries with summaries for 2008 and 2009."""
    rows = []
    for i, bene in enumerate(["00013D2EFD8E45D1", "00016F745862898F", "0001FDD721E223DC"]):
        for year in (2008, 2009):
            rows.append(
                {
                    "id": bene,
                    "year": year,
                    "birth": date(1930 + i, 5, 1),
                    "sex": "12"[i % 2],
                    "race": "1235"[i],
                    "state": "05",
                    "ip": Decimal(1000 * (i + 1)),
                }
            )
    return rows  # fmt: skip


def claims() -> list[dict]:
    """One claim per beneficiary-year; one has the negative payment real files contain."""
    rows = []
    for n, b in enumerate(beneficiaries()):
        start = date(b["year"], 3 + n, 10)
        rows.append(
            {
                "id": b["id"],
                "clm": f"{196661176988000 + n}",
                "seg": 1,
                "from": start,
                "thru": date(b["year"], 3 + n, 14),
                "pay": Decimal(-40 if n == 4 else 4000 + 500 * n),
            }
        )
    return rows  # fmt: skip


def ymd(d: date | None) -> str | None:
    return None if d is None else d.strftime("%Y%m%d")


def bronze_frames(spark, settings, bene: list[dict], ip: list[dict]) -> dict:
    """Bronze rows as ingestion writes them: CMS names, text, lineage, file attributes."""
    lineage = ["_source_file", "_source_sha256", "_source_line", "_batch_id", "_ingested_at"]
    frames = {}
    for table, records in (("beneficiary_summary", bene), ("inpatient_claims", ip)):
        columns = settings.sources[table].column_names
        rows = [dict.fromkeys(columns) | r for r in records]
        ddl = ", ".join(f"`{c}` string" for c in columns) + (
            ", _source_file string, _source_sha256 string, _source_line bigint, _batch_id string,"
            " _ingested_at timestamp, sample string, year string, part string"
        )
        names = columns + lineage + ["sample", "year", "part"]
        frames[table] = spark.createDataFrame([tuple(r.get(c) for c in names) for r in rows], ddl)
    return frames


def bronze_records(bene: list[dict], ip: list[dict]) -> tuple[list[dict], list[dict]]:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    b_rows = []
    for line, b in enumerate(bene, start=2):
        name = BENE_FILE.format(year=b["year"])
        b_rows.append({
            "DESYNPUF_ID": b["id"], "BENE_BIRTH_DT": ymd(b["birth"]), "BENE_SEX_IDENT_CD": b["sex"],
            "BENE_RACE_CD": b["race"], "BENE_ESRD_IND": "0", "SP_STATE_CODE": b["state"],
            "BENE_COUNTY_CD": "10", "BENE_HI_CVRAGE_TOT_MONS": "12", "BENE_SMI_CVRAGE_TOT_MONS": "12",
            **{cms: "2" for cms, _ in CHRONIC}, "MEDREIMB_IP": f"{b['ip']:.2f}", "MEDREIMB_OP": "0.00",
            "MEDREIMB_CAR": "0.00", "_source_file": name, "_source_sha256": name.lower(),
            "_source_line": line, "_batch_id": "b1", "_ingested_at": now, "sample": "9",
            "year": str(b["year"]),
        })  # fmt: skip
    i_rows = []
    for line, c in enumerate(ip, start=2):
        i_rows.append({
            "DESYNPUF_ID": c["id"], "CLM_ID": c["clm"], "SEGMENT": str(c["seg"]),
            "CLM_FROM_DT": ymd(c["from"]), "CLM_THRU_DT": ymd(c["thru"]), "CLM_PMT_AMT": f"{c['pay']:.2f}",
            "CLM_ADMSN_DT": ymd(c["from"]), "NCH_BENE_DSCHRG_DT": ymd(c["thru"]), "_source_file": IP_FILE,
            "_source_sha256": IP_FILE.lower(), "_source_line": line, "_batch_id": "b1",
            "_ingested_at": now, "sample": "9",
        })  # fmt: skip
    return b_rows, i_rows


def silver_frames(spark, bene: list[dict], ip: list[dict]) -> dict:
    """Silver rows with dbt's names and types (dbt_project/models/silver)."""
    b_rows = [
        (b["id"], b["year"], b["birth"], None, b["sex"], "x", b["race"], "x", False, b["state"],
         "x", "010", 12, 12, 0, 12, *([False] * len(CHRONIC)), b["ip"], Decimal(0), Decimal(0),
         b["year"] - b["birth"].year, 0, BENE_FILE.format(year=b["year"]), n, "b1")
        for n, b in enumerate(bene, start=2)
    ]  # fmt: skip
    i_rows = [
        (c["id"], c["clm"], c["seg"], c["from"], c["thru"], "0100AB", c["pay"], c["from"],
         c["thru"], "190", "9", IP_FILE, n, "b1")
        for n, c in enumerate(ip, start=2)
    ]  # fmt: skip
    return {
        "beneficiary": spark.createDataFrame(b_rows, SILVER_BENEFICIARY),
        "inpatient_claims": spark.createDataFrame(i_rows, SILVER_INPATIENT),
    }


def write_schema(spark, schema: str, frames: dict) -> None:
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
    for table, frame in frames.items():
        frame.write.mode("overwrite").saveAsTable(f"{schema}.{table}")


def write_ledger(settings, bronze: dict[str, list[dict]]) -> None:
    """One `loaded` ledger row per source file, with the rows it put in bronze."""
    files: dict[tuple[str, str], int] = {}
    for table, rows in bronze.items():
        for r in rows:
            files[(table, r["_source_file"])] = files.get((table, r["_source_file"]), 0) + 1
    ledger.record(settings, [
        {"sha256": name.lower(), "file_name": name, "source_file": name, "table": table,
         "batch_id": "b1", "status": "loaded", "rows_read": n, "rows_bronze": n, "rows_quarantined": 0}
        for (table, name), n in files.items()
    ])  # fmt: skip


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """Settings of a fresh lake, a clean bronze schema and a clean silver build schema."""
    settings = load_settings(lake=str(tmp_path_factory.mktemp("quality") / "lake"))
    tag = uuid.uuid4().hex[:8]
    bronze, silver = f"qa_bronze_{tag}", f"qa_silver_build_{tag}"
    bene, ip = beneficiaries(), claims()
    b_rows, i_rows = bronze_records(bene, ip)
    frames = bronze_frames(spark, settings, b_rows, i_rows)
    write_schema(spark, bronze, frames)
    write_ledger(settings, {"beneficiary_summary": b_rows, "inpatient_claims": i_rows})
    write_schema(spark, silver, silver_frames(spark, bene, ip))
    return {"settings": settings, "bronze": bronze, "silver": silver, "tag": tag}


def outcomes(gate) -> dict[str, str]:
    return {f"{c.table}: {c.check}": c.outcome for c in gate.checks}


def check(gate, table: str, name: str):
    return next(c for c in gate.checks if c.table == table and c.check == name)


def test_clean_bronze_passes_with_the_known_negative_payment_only_warned(spark, lake):
    gate = run_checks(spark, lake["settings"], "bronze", schema=lake["bronze"],
                      tables=["beneficiary_summary", "inpatient_claims", "file_ledger"])  # fmt: skip
    assert gate.passed, gate.explain()
    negative = check(gate, "inpatient_claims", "Negative claim payment (known in the real data)")
    assert negative.outcome == "warn" and negative.value == 1
    assert [r["CLM_PMT_AMT"] for r in negative.failed_rows] == ["-40.00"]
    ledger_check = check(gate, "inpatient_claims", "Rows per file reconcile with the file ledger")
    assert ledger_check.outcome == "pass" and ledger_check.failed_rows == []
    stored = read_results(lake["settings"], "bronze").to_pylist()
    assert len([r for r in stored if r["run_id"] == gate.run_id]) == len(gate.checks)


def test_bronze_gate_stops_on_a_null_key_an_unledgered_row_and_a_bad_date(spark, lake):
    settings = lake["settings"]
    b_rows, i_rows = bronze_records(beneficiaries(), claims())
    broken = dict(i_rows[0], DESYNPUF_ID=None, CLM_ID="999", _source_line=99)
    out_of_range = dict(i_rows[1], CLM_ID="998", CLM_FROM_DT="20110301", _source_line=98)
    schema = f"qa_bronze_defects_{lake['tag']}"
    write_schema(
        spark, schema, bronze_frames(spark, settings, b_rows, [*i_rows, broken, out_of_range])
    )
    gate = run_checks(spark, settings, "bronze", schema=schema, tables=["inpatient_claims"])
    assert not gate.passed
    failed = {c.check for c in gate.failures}
    assert {
        "Beneficiary id is present",
        "Rows per file reconcile with the file ledger",
        "Claim start date is YYYYMMDD within 2007-2010",
    } <= failed
    assert check(gate, "inpatient_claims", "Beneficiary id is present").value == 1
    ledger_check = check(gate, "inpatient_claims", "Rows per file reconcile with the file ledger")
    (mismatch,) = ledger_check.failed_rows
    assert mismatch["rows_in_bronze"] - mismatch["rows_in_ledger"] == 2
    assert "Claim start date is YYYYMMDD within 2007-2010" in gate.explain()
    samples = read_failed_rows(settings, gate.run_id).to_pylist()
    dated = [
        json.loads(r["row"])
        for r in samples
        if r["check"].startswith("Claim start date is YYYYMMDD")
    ]
    assert [r["_source_line"] for r in dated] == [98]


def test_clean_silver_passes_and_zero_failing_rows_pass_cleanly(spark, lake):
    gate = run_checks(spark, lake["settings"], "silver", schema=lake["silver"],
                      tables=["beneficiary", "inpatient_claims"], upstream={"bronze": lake["bronze"]})  # fmt: skip
    assert gate.passed, gate.explain()
    assert [c.check for c in gate.warnings] == ["Negative claim payment (known in the real data)"]
    dupes = check(gate, "inpatient_claims", "One row per claim id and segment")
    assert (dupes.outcome, dupes.value, dupes.failed_rows) == ("pass", 0, [])
    orphans = check(
        gate, "inpatient_claims", "Every claim's beneficiary has a summary for the claim's year"
    )
    assert (orphans.outcome, orphans.value) == ("pass", 0)


def test_silver_gate_stops_on_orphan_claim_duplicate_key_and_out_of_range_date(spark, lake):
    bene, ip = beneficiaries(), claims()
    orphan = dict(ip[0], clm="777", **{"from": date(2010, 6, 1), "thru": date(2010, 6, 3)})
    late = dict(ip[1], clm="778", **{"from": date(2011, 2, 1), "thru": date(2011, 2, 2)})
    schema = f"qa_silver_build_defects_{lake['tag']}"
    write_schema(spark, schema, silver_frames(spark, bene, [*ip, ip[2], orphan, late]))
    gate = run_checks(spark, lake["settings"], "silver", schema=schema,
                      tables=["inpatient_claims"], upstream={"bronze": lake["bronze"]})  # fmt: skip
    assert not gate.passed
    orphans = check(
        gate, "inpatient_claims", "Every claim's beneficiary has a summary for the claim's year"
    )
    assert orphans.outcome == "fail"
    assert {r["claim_id"] for r in orphans.failed_rows} == {"777", "778"}
    dupes = check(gate, "inpatient_claims", "One row per claim id and segment")
    assert (dupes.outcome, dupes.value) == ("fail", 1)
    dates = check(gate, "inpatient_claims", "Claim, admission and discharge dates within 2007-2010")
    assert dates.outcome == "fail" and [r["claim_id"] for r in dates.failed_rows] == ["778"]
    recon = check(gate, "inpatient_claims", "One row per distinct bronze key (CLM_ID, SEGMENT)")
    assert (recon.outcome, recon.value) == ("fail", 3)  # 3 rows more than bronze holds
    # warn-only findings are reported, never the reason for stopping
    assert all(c.outcome != "warn" for c in gate.failures)


SILVER_DIAGNOSES = (
    "claim_type string, claim_id string, segment int, desynpuf_id string, "
    "claim_start_date date, diagnosis_position int, icd9_dgns_cd string"
)
SILVER_CARRIER_LINES = (
    "claim_id string, desynpuf_id string, claim_start_date date, line_num int, "
    "performing_npi string, provider_tax_num string, hcpcs_cd string, "
    "line_payment_amount decimal(12,2), line_deductible_amount decimal(12,2), "
    "line_primary_payer_paid_amount decimal(12,2), line_coinsurance_amount decimal(12,2), "
    "line_allowed_charge_amount decimal(12,2), line_processing_indicator_code string, "
    "line_icd9_dgns_cd string, is_allowed boolean"
)


def test_codes_and_lines_fail_without_a_claim_or_with_a_position_twice(spark, lake):
    # one pass per claim finds both defects (soda_checks/silver/claim_diagnoses.yml,
    # carrier_lines.yml): a code or line whose claim is not in silver, and a position
    # (line number) that a claim holds twice; a claim with distinct positions passes
    bene, ip = beneficiaries(), claims()
    clean, twice = ip[0], ip[1]

    def code(claim: dict | str, position: int) -> tuple:
        clm = claim if isinstance(claim, str) else claim["clm"]
        return ("inpatient", clm, 1, clean["id"], clean["from"], position, "4019")

    def line(clm: str, number: int) -> tuple:
        amounts = [Decimal(10), *[Decimal(0)] * 4]
        return (
            clm,
            clean["id"],
            clean["from"],
            number,
            None,
            None,
            "99213",
            *amounts,
            "A",
            None,
            True,
        )

    diagnoses = [code(clean, 1), code(clean, 2), code(twice, 3), code(twice, 3), code("999", 1)]
    lines = [line("C1", 1), line("C1", 2), line("C2", 1), line("C2", 1), line("C9", 1)]
    frames = silver_frames(spark, bene, ip) | {
        "outpatient_claims": spark.createDataFrame([], "claim_id string, segment int"),
        "carrier_claims": spark.createDataFrame(
            [("C1", Decimal(20)), ("C2", Decimal(20))],
            "claim_id string, payment_amount decimal(12,2)",
        ),
        "claim_diagnoses": spark.createDataFrame(diagnoses, SILVER_DIAGNOSES),
        "carrier_lines": spark.createDataFrame(lines, SILVER_CARRIER_LINES),
    }
    schema = f"qa_silver_build_codes_{lake['tag']}"
    write_schema(spark, schema, frames)
    gate = run_checks(spark, lake["settings"], "silver", schema=schema,
                      tables=["claim_diagnoses", "carrier_lines"], upstream={"bronze": lake["bronze"]})  # fmt: skip
    assert not gate.passed
    codes = check(gate, "claim_diagnoses",
                  "Every code belongs to a silver claim, one code per claim segment and position")  # fmt: skip
    assert codes.outcome == "fail"
    assert sorted((r["claim_id"], r["codes"], r["positions"], r["has_no_claim"]) for r in codes.failed_rows) == [
        (twice["clm"], 2, 1, False), ("999", 1, 1, True)
    ]  # fmt: skip
    by_line = check(gate, "carrier_lines",
                    "Every line belongs to a carrier claim, one line per claim and line number")  # fmt: skip
    assert by_line.outcome == "fail"
    assert sorted((r["claim_id"], r["lines"], r["has_no_claim"]) for r in by_line.failed_rows) == [
        ("C2", 2, False), ("C9", 1, True)
    ]  # fmt: skip


def test_a_shifted_distribution_fails_against_the_last_passing_scan(spark, lake):
    settings = lake["settings"]
    baseline = run_checks(spark, settings, "silver", schema=lake["silver"],
                          tables=["inpatient_claims"], upstream={"bronze": lake["bronze"]})  # fmt: skip
    assert baseline.passed, baseline.explain()
    shifted = [dict(c, pay=c["pay"] * 3) for c in claims()]
    schema = f"qa_silver_build_shift_{lake['tag']}"
    write_schema(spark, schema, silver_frames(spark, beneficiaries(), shifted))
    gate = run_checks(spark, settings, "silver", schema=schema, tables=["inpatient_claims"],
                      upstream={"bronze": lake["bronze"]})  # fmt: skip
    shift = check(
        gate, "inpatient_claims", "Mean claim payment shifts less than 10% vs previous scan"
    )
    assert shift.outcome == "fail" and shift.value == pytest.approx(200.0)
    assert not gate.passed
    # the failed run is no baseline: scanning the clean build again compares with `baseline`
    again = run_checks(spark, settings, "silver", schema=lake["silver"],
                       tables=["inpatient_claims"], upstream={"bronze": lake["bronze"]})  # fmt: skip
    assert check(again, "inpatient_claims", shift.check).value == pytest.approx(0.0)
    runs = history(settings, "silver")["runs"]
    assert [r["passed"] for r in runs[:3]] == [True, False, True]


# --- gated publishing: a failed gate leaves the published layer as it was ----------------


def dim_beneficiary_frame(spark, bene: list[dict]):
    """gold.dim_beneficiary rows (dbt_project/models/gold/dim_beneficiary.sql) from summaries."""
    by_id: dict[str, list[dict]] = {}
    for b in bene:
        by_id.setdefault(b["id"], []).append(b)
    rows = [
        (i, bs[0]["birth"], None, False, bs[0]["sex"], bs[0]["race"], bs[0]["state"],
         min(b["year"] for b in bs), max(b["year"] for b in bs), len(bs))
        for i, bs in by_id.items()
    ]  # fmt: skip
    ddl = (
        "desynpuf_id string, birth_date date, death_date date, is_deceased boolean, "
        "sex_code string, race_code string, state_code string, first_summary_year int, "
        "last_summary_year int, summary_year_count int"
    )
    return spark.createDataFrame(rows, ddl)


def candidate(spark, lake, publishing, layer: str, frames: dict, upstream: dict, tables=None):
    """A successful build of `frames` in its build schema, and its gate as the pipeline runs
    it (on `tables` only, to stay quick: the others are scanned by the tests above)."""
    build_id = new_build_id()
    build = BuildResult(layer, build_id, build_schema(layer, build_id), True, sorted(frames))
    write_schema(spark, build.schema, frames)
    record_run(publishing, build, None)
    gate = run_checks(spark, lake["settings"], layer, schema=build.schema, batch_id=build_id,
                      tables=tables or sorted(frames), upstream=upstream)  # fmt: skip
    return build, gate


def published(spark, layer: str, table: str) -> tuple[str, list]:
    """The build schema the published view reads, and the rows it shows."""
    (view,) = spark.sql(f"SHOW CREATE TABLE {layer}.{table}").collect()
    rows = sorted(spark.table(f"{layer}.{table}").collect(), key=str)
    return view[0], rows


@pytest.fixture(scope="module")
def publishing(spark, spark_settings):
    """Settings whose publish state the promotions here go through: the session lake's.

    The published schemas `silver` and `gold` belong to the session's one metastore, and
    promote keeps only the last builds its lake published; so builds are published through
    the session lake, and what it had published before is published again afterwards.
    Gate results and metrics stay in this module's own lake.
    """
    before = {layer: published_build(spark_settings, layer) for layer in ("silver", "gold")}
    yield spark_settings
    for layer, build in before.items():
        if build and published_build(spark_settings, layer)["build_id"] != build["build_id"]:
            rollback(spark_settings, spark, layer)


@pytest.fixture(scope="module")
def published_silver(spark, lake, publishing):
    """A clean silver build that passed its gate (warnings only) and was promoted."""
    frames = silver_frames(spark, beneficiaries(), claims())
    build, gate = candidate(spark, lake, publishing, "silver", frames,
                            {"bronze": lake["bronze"]}, tables=["inpatient_claims"])  # fmt: skip
    promote_if_passed(publishing, spark, build, gate)  # dbt run-operation promote_layer
    return build, gate


def assert_refused_with_values(error: LayerNotPublished, gate, expected: set[str]) -> None:
    text = str(error)
    assert expected <= {c.check for c in gate.failures}
    for c in gate.failures:  # each failing check is named with its measured value
        assert f"{c.table}: {c.check} (measured {format_value(c.value)})" in text


def test_a_failed_silver_gate_leaves_the_published_silver_untouched(
    spark, lake, publishing, published_silver
):
    settings = publishing
    old, old_gate = published_silver
    assert old_gate.passed and old_gate.warnings  # a warning never stops promotion
    assert published_build(settings, "silver")["build_id"] == old.build_id
    before = {t: published(spark, "silver", t) for t in old.models}
    assert all(old.schema in view for view, _ in before.values())

    bene, ip = beneficiaries(), claims()
    orphan = dict(ip[0], clm="777", **{"from": date(2010, 6, 1), "thru": date(2010, 6, 3)})
    frames = silver_frames(spark, bene, [*ip, ip[2], orphan])  # a duplicate key, an orphan
    new, gate = candidate(spark, lake, settings, "silver", frames, {"bronze": lake["bronze"]},
                          tables=["inpatient_claims"])  # fmt: skip
    with pytest.raises(LayerNotPublished) as refused:
        promote_if_passed(settings, spark, new, gate)

    assert_refused_with_values(refused.value, gate, {
        "One row per claim id and segment",
        "Every claim's beneficiary has a summary for the claim's year",
    })  # fmt: skip
    assert '"claim_id": "777"' in str(refused.value)  # a failing row, to find it by
    assert f"published silver unchanged: still build {old.build_id}" in str(refused.value)
    assert published_build(settings, "silver")["build_id"] == old.build_id
    assert {t: published(spark, "silver", t) for t in old.models} == before


def test_a_failed_gold_gate_leaves_the_published_gold_untouched(
    spark, lake, publishing, published_silver
):
    settings = publishing
    bene = beneficiaries()
    good = {"dim_beneficiary": dim_beneficiary_frame(spark, bene)}
    old, old_gate = candidate(spark, lake, settings, "gold", good, {"silver": "silver"})
    promote_if_passed(settings, spark, old, old_gate)
    before = published(spark, "gold", "dim_beneficiary")
    assert old.schema in before[0] and len(before[1]) == len({b["id"] for b in bene})

    bad_race = [dict(b, race="9") if b["id"] == bene[0]["id"] else b for b in bene]
    late_year = [*bad_race, dict(bene[2], year=2011)]
    frames = {"dim_beneficiary": dim_beneficiary_frame(spark, late_year)}
    new, gate = candidate(spark, lake, settings, "gold", frames, {"silver": "silver"})
    with pytest.raises(LayerNotPublished) as refused:
        promote_if_passed(settings, spark, new, gate)

    assert_refused_with_values(refused.value, gate, {
        "Race is a codebook value (1, 2, 3, 5)",
        "Summary years are 2008-2010, first <= last",
    })  # fmt: skip
    assert f"published gold unchanged: still build {old.build_id}" in str(refused.value)
    assert published_build(settings, "gold")["build_id"] == old.build_id
    assert published(spark, "gold", "dim_beneficiary") == before


# --- bronze: the newest batch against the previous batch ---------------------------------


def batch_rows(ip_rows: list[dict], file_name: str, factor: float, n: int | None = None):
    """A delivery of `n` claims in its own file and `_batch_id`, payments times `factor`."""
    return [
        dict(r, CLM_ID=f"{file_name[:3]}{i}", CLM_PMT_AMT=f"{float(r['CLM_PMT_AMT']) * factor:.2f}",
             _source_file=file_name, _source_sha256=file_name, _source_line=i + 2,
             _batch_id=f"batch-{file_name}")
        for i, r in enumerate(ip_rows[:n])
    ]  # fmt: skip


def mean_payment(rows: list[dict]) -> float:
    return sum(float(r["CLM_PMT_AMT"]) for r in rows) / len(rows)


def test_bronze_compares_the_newest_batch_with_the_previous_batch(spark, tmp_path):
    settings = load_settings(lake=str(tmp_path / "lake"))
    _, ip = bronze_records(beneficiaries(), claims())
    first = batch_rows(ip, "f1.csv", 1.0)
    second = batch_rows(ip, "f2.csv", 1.3)  # +30% vs the first: a warning
    third = batch_rows(ip, "f3.csv", 3.0, n=2)  # far above the second, few rows: stops
    schema = f"qa_bronze_batches_{uuid.uuid4().hex[:8]}"
    shift = "Newest batch's mean claim payment shifts less than 10% vs previous batch"
    size = "Newest batch has -50% to +100% of the previous batch's rows"

    def scan(rows: list[dict], new_file: list[dict]):
        write_ledger(settings, {"inpatient_claims": new_file})
        write_schema(
            spark,
            schema,
            {"inpatient_claims": bronze_frames(spark, settings, [], rows)["inpatient_claims"]},
        )
        return run_checks(spark, settings, "bronze", schema=schema, tables=["inpatient_claims"])  # fmt: skip

    gate = scan(first, first)
    assert gate.passed, gate.explain()
    assert check(gate, "inpatient_claims", shift).value == 0  # nothing earlier to compare with

    gate = scan(first + second, second)
    assert gate.passed, gate.explain()  # warned, not stopped
    moved = check(gate, "inpatient_claims", shift)
    expected = 100 * (mean_payment(second) - mean_payment(first)) / mean_payment(first)
    assert moved.outcome == "warn" and moved.value == pytest.approx(expected)

    gate = scan(first + second + third, third)
    assert not gate.passed
    moved = check(gate, "inpatient_claims", shift)
    expected = 100 * (mean_payment(third) - mean_payment(second)) / mean_payment(second)
    assert moved.outcome == "fail" and moved.value == pytest.approx(expected)  # vs the second
    rows = check(gate, "inpatient_claims", size)
    assert rows.outcome == "warn"
    assert rows.value == pytest.approx(100 * (len(third) - len(second)) / len(second))
    assert f"{shift} (measured {format_value(moved.value)})" in gate.explain()


def test_a_failed_rows_query_runs_once_however_soda_pages_through_it(spark, lake, tmp_path):
    # Soda's own Spark cursor ran a `fail query` once to count it and again for every page
    # of 100 rows (cms_pipeline/quality/spark_cursor.py); each run evaluates `counted`
    evaluated = spark.sparkContext.accumulator(0)

    def counted(value):
        evaluated.add(1)
        return value

    spark.udf.register("counted", counted, "bigint")
    schema = f"qa_one_pass_{lake['tag']}"
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
    ids = list(range(1, 1201))
    spark.createDataFrame([(i,) for i in ids], "id bigint").write.saveAsTable(f"{schema}.events")
    (tmp_path / "silver").mkdir()
    (tmp_path / "silver" / "events.yml").write_text(
        "checks for events:\n"
        "  - failed rows:\n"
        "      name: Multiples of 7\n"
        "      samples limit: 5\n"
        "      fail query: SELECT id FROM events WHERE counted(id) % 7 = 0\n"
    )
    gate = run_checks(spark, lake["settings"], "silver", schema=schema, tables=["events"],
                      checks_dir=tmp_path, save=False)  # fmt: skip
    (result,) = gate.checks
    multiples = [i for i in ids if i % 7 == 0]
    assert (result.outcome, result.value) == ("fail", len(multiples))
    assert len(result.failed_rows) == 5
    assert {r["id"] for r in result.failed_rows} <= set(multiples)
    assert evaluated.value == len(ids)
