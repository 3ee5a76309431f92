"""The synthetic generator: CMS layouts, contracts, consistency, calibration and signal.

Generated at small scale (fast, no JVM). Expected values come from the calibration file
and the contracts, never from constants copied from a sample.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from cms_pipeline.cli import app
from cms_pipeline.config import load_settings
from cms_pipeline.ingest.header import check_header
from cms_pipeline.ingest.validation import find_violations
from cms_pipeline.synth import inpatient, render
from cms_pipeline.synth.calibrate import calibrate
from cms_pipeline.synth.calibration import CALIBRATION_FILE, Calibration, load_calibration
from cms_pipeline.synth.draws import draw_segment2
from cms_pipeline.synth.generator import _jobs, generate, generate_sample, plan_sample
from cms_pipeline.synth.layout import FILE_KINDS, KINDS, header_bytes

SCALE = 0.01
TYPE_RE = {
    "id": r"^[0-9A-F]{16}$",
    "date": r"^\d{8}$",
    "integer": r"^-?\d+$",
    "decimal": r"^-?\d+(\.\d+)?$",
}


@pytest.fixture(scope="module")
def contracts():
    return load_settings().sources


@pytest.fixture(scope="module")
def calib():
    return load_calibration()


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("synth")
    files = generate(out, scale=SCALE, seed=11, samples=1)
    return {info["kind"]: Path(info["path"]) for info in files.values()}


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def frames(generated) -> dict[str, pd.DataFrame]:
    return {kind: read(path) for kind, path in generated.items()}


def real_header(sample_data: Path, kind: str) -> bytes:
    """The header line of the real file of this kind (sample_1 or 2 where present, else 0)."""
    k = KINDS[kind]
    for sample in (1, 2, 0):
        folder = sample_data / f"sample_{sample}"
        csv, zipped = folder / k.file_name(sample), folder / k.file_name(sample, "zip")
        if csv.exists():
            return csv.open("rb").readline()
        if zipped.exists():
            with zipfile.ZipFile(zipped) as zf, zf.open(zf.namelist()[0]) as fh:
                return fh.readline()
    raise AssertionError(f"no real file of kind {kind}")


# -- layout ------------------------------------------------------------------------------


def test_eight_files_with_cms_names(generated, contracts):
    assert sorted(generated) == sorted(k.key for k in FILE_KINDS)
    for kind, path in generated.items():
        found = load_settings().contract_for(path.name)
        assert found is not None, path.name
        contract, attrs = found
        assert contract.name == KINDS[kind].contract
        assert attrs["sample"] == "1"
    assert generated["carrier_a"].name.endswith("Sample_1A.csv")
    assert generated["carrier_b"].name.endswith("Sample_1B.csv")


def test_header_bytes_equal_the_real_files(generated, contracts, sample_data):
    for kind, path in generated.items():
        ours = path.open("rb").readline()
        assert ours == header_bytes(contracts[KINDS[kind].contract])
        real = real_header(sample_data, kind)
        if real.endswith(b"\r\n"):  # samples 1-2 keep CMS's bytes exactly
            assert ours == real, kind
        else:  # sample_0 (carrier, PDE) is an LF-only test fixture: same names and quoting
            assert ours.rstrip(b"\r\n") == real.rstrip(b"\r\n"), kind


def test_rows_are_unquoted_crlf_with_every_field(generated, contracts):
    for kind, path in generated.items():
        width = len(contracts[KINDS[kind].contract].column_names)
        data = path.read_bytes()
        lines = data.split(b"\r\n")
        assert lines[-1] == b"" and b"\n" not in data.replace(b"\r\n", b""), kind
        for line in lines[1:-1]:
            assert line.count(b",") == width - 1 and b'"' not in line, (kind, line[:80])


def test_values_pass_the_contracts(frames, contracts):
    for kind, df in frames.items():
        contract = contracts[KINDS[kind].contract]
        assert list(df.columns) == contract.column_names
        for spec in contract.columns:
            col = df[spec.name]
            if not spec.nullable:
                assert col.notna().all(), (kind, spec.name)
            values = col.dropna()
            checks = [TYPE_RE.get(spec.type), spec.pattern]
            for pattern in filter(None, checks):
                bad = values[~values.str.match(pattern)]
                assert bad.empty, (kind, spec.name, bad.head(3).tolist())
            if spec.domain:
                assert set(values) <= set(spec.domain), (kind, spec.name)
            if spec.type == "date":
                parsed = pd.to_datetime(values, format="%Y%m%d", errors="coerce")
                assert parsed.notna().all(), (kind, spec.name)
        if contract.expectations.unique_keys and contract.keys:
            keys = [k for k in contract.keys if k in df.columns]
            assert not df.duplicated(keys).any(), kind


def test_cms_quirks(frames):
    bene, ip, op = frames["bene_2008"], frames["inpatient"], frames["outpatient"]
    car, pde = frames["carrier_a"], frames["pde"]
    # leading zeros kept: two-digit states, three-digit counties, "00" plan months
    assert bene.SP_STATE_CODE.str.len().eq(2).all() and bene.BENE_COUNTY_CD.str.len().eq(3).all()
    assert bene.SP_STATE_CODE.str.startswith("0").any()
    assert bene.PLAN_CVRG_MOS_NUM.str.len().eq(2).all()
    # amounts with cents on claims and beneficiaries; whole numbers on PDE
    for col in (ip.CLM_PMT_AMT, op.CLM_PMT_AMT, bene.MEDREIMB_CAR, car.LINE_NCH_PMT_AMT_1):
        assert col.dropna().str.fullmatch(r"-?\d+\.\d\d").all()
    assert pde.TOT_RX_CST_AMT.str.fullmatch(r"\d+").all()
    # codes: ICD-9 with V and E codes, HCPCS, 11-digit NDC, 10-digit NPI, provider numbers
    dx = pd.concat([ip[f"ICD9_DGNS_CD_{i}"] for i in range(1, 11)]
                   + [op[f"ICD9_DGNS_CD_{i}"] for i in range(1, 11)]).dropna()  # fmt: skip
    assert dx.str.startswith("V").any() and dx.str.startswith("E").any()
    assert op.HCPCS_CD_1.dropna().str.fullmatch(r"[A-Z0-9]{5}").all()
    assert pde.PROD_SRVC_ID.str.fullmatch(r"\d{11}").all()
    for npi in (ip.AT_PHYSN_NPI, op.AT_PHYSN_NPI, car.PRF_PHYSN_NPI_1):
        assert npi.dropna().str.fullmatch(r"\d{10}").all()
    assert ip.PRVDR_NUM.str.fullmatch(r"\d{4}[A-Z]{2}").all()
    # empty trailing fields: inpatient HCPCS columns are empty as in the real file
    assert ip.HCPCS_CD_45.isna().all()


def test_inpatient_segment_two_rows(contracts, calib):
    ids = pa.array(["0000000000000001", "0000000000000002", "0000000000000003"])
    table = pa.table(
        {c: pa.nulls(3, pa.string()) for c in contracts["inpatient_claims"].column_names}
    )
    table = table.set_column(0, "DESYNPUF_ID", ids)
    table = table.set_column(1, "CLM_ID", pa.array(["11", "12", "13"]))
    table = table.set_column(2, "SEGMENT", pa.array([1, 1, 1]))
    drg = calib.inpatient.segment2_drg
    segment2 = draw_segment2(np.random.default_rng(0), table.num_rows, 1.0, drg)
    out = render.with_segment2(table, segment2, drg.text)
    assert out.column("CLM_ID").to_pylist() == ["11", "11", "12", "12", "13", "13"]
    assert out.column("SEGMENT").to_pylist() == [1, 2, 1, 2, 1, 2]
    drg = out.column("CLM_DRG_CD").to_pylist()[1::2]
    assert set(drg) <= set(calib.inpatient.segment2_drg.values)


def test_code_column_widths_come_from_the_contracts(contracts):
    """Fewer diagnosis columns in a contract: fewer drawn and written, none invented."""
    ip = contracts["inpatient_claims"]
    dx = render.numbered(ip, "ICD9_DGNS_CD_")
    assert inpatient.code_widths(ip)[0] == len(dx) == len(set(dx))
    fewer = ip.model_copy(update={"columns": [c for c in ip.columns if c.name != dx[-1]]})
    assert inpatient.code_widths(fewer)[0] == len(dx) - 1
    with pytest.raises(KeyError, match="prescription_drug_events"):
        render.numbered(contracts["prescription_drug_events"], "ICD9_DGNS_CD_")


def test_money_is_written_alike_inside_and_beyond_the_cached_amounts():
    """Amounts beyond the per-process text pool (rare yearly totals; no fixture seed reaches
    them) are written as the pooled ones are: whole dollars and ".00", masked ones empty."""
    inside = np.array([-100_000, -5, 0, 26_000, 1_000_000])
    mask = np.array([False, False, True, False, False])
    assert render.money(inside, mask).to_pylist() == ["-100000.00", "-5.00", None, "26000.00",
                                                      "1000000.00"]  # fmt: skip
    beyond = np.array([-100_001, 26_000, 1_000_001, 26_000])
    assert render.money(beyond, np.array([False, False, False, True])).to_pylist() == [
        "-100001.00", "26000.00", "1000001.00", None]  # fmt: skip


def test_calibration_errors_name_the_file_and_the_key(tmp_path):
    raw = json.loads(CALIBRATION_FILE.read_text())
    del raw["inpatient"]["los"]
    raw["outpatient"]["dx"]["p"] = raw["outpatient"]["dx"]["p"][:-1]
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError) as info:
        load_calibration(path)
    message = str(info.value)
    assert str(path) in message and "inpatient.los" in message and "outpatient.dx" in message
    assert "cms_pipeline.synth.calibrate" in message


def test_calibrating_the_real_rows_gives_the_committed_file(sample_data):
    """`python -m cms_pipeline.synth.calibrate` on data/synpuf writes calibration.json as
    committed, and the typed calibration reads all of it."""
    stats = calibrate(sample_data)
    assert json.loads(CALIBRATION_FILE.read_text()) == json.loads(json.dumps(stats))
    assert Calibration.model_validate(stats).model_dump().keys() == stats.keys()


# -- consistency -------------------------------------------------------------------------


def test_yearly_files_agree(frames, calib):
    b8, b9, b10 = frames["bene_2008"], frames["bene_2009"], frames["bene_2010"]
    n8, deaths = plan_sample(calib, SCALE)
    assert len(b8) == n8 and len(b9) == n8 - deaths[0] and len(b10) == len(b9) - deaths[1]
    assert set(b10.DESYNPUF_ID) <= set(b9.DESYNPUF_ID) <= set(b8.DESYNPUF_ID)
    fixed = ["BENE_BIRTH_DT", "BENE_SEX_IDENT_CD", "BENE_RACE_CD", "SP_STATE_CODE",
             "BENE_COUNTY_CD"]  # fmt: skip
    both = b8.merge(b9, on="DESYNPUF_ID", suffixes=("", "_9"))
    for col in fixed:
        assert (both[col] == both[f"{col}_9"]).all(), col
    for year, df, nxt in ((2008, b8, b9), (2009, b9, b10)):
        dead = df[df.BENE_DEATH_DT.notna()]
        assert dead.BENE_DEATH_DT.str[:4].eq(str(year)).all()
        assert not set(dead.DESYNPUF_ID) & set(nxt.DESYNPUF_ID)  # the dead leave the next file
    assert b8.DESYNPUF_ID.is_monotonic_increasing


def test_claims_only_while_alive_and_in_the_years(frames):
    bene = pd.concat([frames["bene_2008"], frames["bene_2009"], frames["bene_2010"]])
    death = bene.dropna(subset=["BENE_DEATH_DT"]).set_index("DESYNPUF_ID").BENE_DEATH_DT
    claims = [
        ("inpatient", "CLM_FROM_DT"), ("outpatient", "CLM_FROM_DT"),
        ("carrier_a", "CLM_FROM_DT"), ("carrier_b", "CLM_FROM_DT"), ("pde", "SRVC_DT"),
    ]  # fmt: skip
    for kind, col in claims:
        df = frames[kind].dropna(subset=[col])
        assert set(df.DESYNPUF_ID) <= set(frames["bene_2008"].DESYNPUF_ID), kind
        assert df[col].between("20070101", "20101231").all(), kind
        assert df[col].ge("20080101").mean() > 0.99, kind  # only a few 2007 dates
        d = df.DESYNPUF_ID.map(death)
        assert (d.isna() | (df[col] < d)).all(), kind
        thru = "CLM_THRU_DT" if "CLM_THRU_DT" in df else col
        assert (df[thru] >= df[col]).all(), kind


def test_carrier_split_by_beneficiary(frames):
    a, b = frames["carrier_a"], frames["carrier_b"]
    assert a.DESYNPUF_ID.max() < b.DESYNPUF_ID.min()
    assert not set(a.CLM_ID) & set(b.CLM_ID)


def test_beneficiary_totals_match_claims(frames):
    """MEDREIMB_IP of a year is the sum of that year's inpatient payments."""
    ip = frames["inpatient"]
    first = ip[ip.SEGMENT == "1"]
    year = first.CLM_FROM_DT.str[:4].replace("2007", "2008")
    paid = first.CLM_PMT_AMT.astype(float).groupby([first.DESYNPUF_ID, year]).sum()
    b9 = frames["bene_2009"].set_index("DESYNPUF_ID").MEDREIMB_IP.astype(float)
    got = paid.xs("2009", level=1)
    assert np.allclose(b9.reindex(got.index).to_numpy(), got.to_numpy())
    assert (b9.drop(got.index, errors="ignore") == 0).all()


# -- calibration and signal --------------------------------------------------------------


def test_statistics_match_the_calibration(frames, calib):
    """Tolerances: shares within 0.05 (n is about 1,100 beneficiaries, so ~3 standard
    errors); claims per beneficiary-year within 25% (IP) / 15% (OP, carrier, PDE);
    mean length of stay within 20%."""
    b = calib.beneficiary
    b8 = frames["bene_2008"]
    sex = b.sex
    for value, p in zip(sex.values, sex.p, strict=True):
        assert abs((b8.BENE_SEX_IDENT_CD == value).mean() - p) < 0.05
    race = b.race
    assert abs((b8.BENE_RACE_CD == race.values[0]).mean() - race.p[0]) < 0.05
    birth = b.birth_year
    assert abs(b8.BENE_BIRTH_DT.str[:4].astype(int).mean() - birth.mean) < 1.5
    names = b.conditions.names
    for name, p in zip(names, b.conditions.prevalence[2008], strict=True):
        assert abs((b8[name] == "1").mean() - p) < 0.05, name
    bene_years = sum(len(frames[f"bene_{y}"]) for y in (2008, 2009, 2010))
    full = calib.full_sample
    full_years = sum(full.beneficiary.values())
    for kind, key, tol in (("inpatient", "inpatient", 0.25), ("outpatient", "outpatient", 0.15),
                           ("pde", "pde", 0.15)):  # fmt: skip
        df = frames[kind]
        n = (df.SEGMENT == "1").sum() if "SEGMENT" in df else len(df)
        rate, expected = n / bene_years, getattr(full, key) / full_years
        assert abs(rate / expected - 1) < tol, (kind, rate, expected)
    car = len(frames["carrier_a"]) + len(frames["carrier_b"])
    assert abs(car / bene_years / (full.carrier / full_years) - 1) < 0.15
    ip = frames["inpatient"][frames["inpatient"].SEGMENT == "1"]
    los = (pd.to_datetime(ip.CLM_THRU_DT) - pd.to_datetime(ip.CLM_FROM_DT)).dt.days
    assert abs(los.mean() / calib.inpatient.los.mean - 1) < 0.2
    top = pd.concat([ip[f"ICD9_DGNS_CD_{i}"] for i in range(1, 11)]).value_counts().index[:10]
    assert calib.inpatient.dx.values[0] in top


def test_admissions_and_costs_rise_with_conditions_and_prior_stays(frames):
    b8, b9 = frames["bene_2008"], frames["bene_2009"]
    ip = frames["inpatient"]
    first = ip[ip.SEGMENT == "1"]
    stays08 = first[first.CLM_FROM_DT < "20090101"].groupby("DESYNPUF_ID").size()
    b8 = b8.assign(stays=b8.DESYNPUF_ID.map(stays08).fillna(0))
    sick = (b8[["SP_CHF", "SP_CHRNKIDN", "SP_COPD", "SP_DIABETES"]] == "1").any(axis=1)
    assert b8[sick].stays.mean() > 1.5 * b8[~sick].stays.mean()
    cost9 = b9.set_index("DESYNPUF_ID")[["MEDREIMB_IP", "MEDREIMB_OP", "MEDREIMB_CAR"]]
    cost9 = cost9.astype(float).sum(axis=1)
    prior = b8.set_index("DESYNPUF_ID").stays.reindex(cost9.index) > 0
    # next-year cost: clearly higher after a stay (bench/synth/learnability.py measures AUCs)
    assert cost9[prior].mean() > 1.2 * cost9[~prior].mean()


# -- determinism, scale, zip -------------------------------------------------------------


def test_same_seed_same_bytes(tmp_path, calib, contracts):
    a = generate_sample(tmp_path / "a", 0.001, 5, 3, calib=calib, contracts=contracts)
    b = generate_sample(tmp_path / "b", 0.001, 5, 3, calib=calib, contracts=contracts)
    c = generate_sample(tmp_path / "c", 0.001, 6, 3, calib=calib, contracts=contracts)
    for name in a:
        assert Path(a[name]["path"]).read_bytes() == Path(b[name]["path"]).read_bytes(), name
    assert any(Path(a[n]["path"]).read_bytes() != Path(c[n]["path"]).read_bytes() for n in a)


def test_a_second_call_uses_its_own_calibration(tmp_path, calib, contracts):
    """A process keeps a sample's writer between chunks, never across calls: the same seed and
    sample with another calibration gives other rows (the kept writer once ignored it)."""
    more_split = calib.model_copy(
        update={"inpatient": calib.inpatient.model_copy(update={"segment2_rate": 0.5})}
    )
    outputs = []
    for name, calibration in (("a", calib), ("b", more_split), ("c", calib)):
        files = generate_sample(tmp_path / name, 0.001, 5, 1, calib=calibration,
                                contracts=contracts)  # fmt: skip
        path = next(Path(f["path"]) for f in files.values() if f["kind"] == "inpatient")
        outputs.append(path.read_bytes())
    assert outputs[0] == outputs[2] != outputs[1]


def test_worker_processes_do_not_change_the_bytes(tmp_path, calib, contracts, monkeypatch):
    monkeypatch.setattr("cms_pipeline.synth.generator.CHUNK_BENES", 40)  # several chunks
    one = generate_sample(tmp_path / "one", 0.001, 5, 1, calib=calib, contracts=contracts)
    two = generate_sample(
        tmp_path / "two", 0.001, 5, 1, calib=calib, contracts=contracts, workers=2
    )
    for name in one:
        assert Path(one[name]["path"]).read_bytes() == Path(two[name]["path"]).read_bytes()
    bene = read(Path(one["DE1_0_2008_Beneficiary_Summary_File_Sample_1.csv"]["path"]))
    assert bene.DESYNPUF_ID.is_monotonic_increasing and bene.DESYNPUF_ID.is_unique


def test_scale_range_and_chunk_plan(calib):
    for scale in (0.001, 1.0, 20.0):
        n, deaths = plan_sample(calib, scale)
        full = calib.full_sample.beneficiary
        assert n == round(full[2008] * scale)
        assert n - deaths[0] == round(full[2009] * scale)
        jobs = _jobs(calib, scale, 1, 1)
        assert sum(j.n_benes for j in jobs) == n
        assert sum(j.deaths[0] for j in jobs) == deaths[0]
    with pytest.raises(ValueError, match="scale"):
        plan_sample(calib, 25.0)


def test_cli_writes_cms_zips(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "synth",
            "--scale",
            "0.001",
            "--seed",
            "2",
            "--out",
            str(tmp_path),
            "--zip",
            "--workers",
            "1",
            "--json",
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    zips = sorted(tmp_path.glob("*.zip"))
    assert len(zips) == len(FILE_KINDS) == len(summary["files"])
    for path in zips:
        with zipfile.ZipFile(path) as zf:
            (inner,) = zf.namelist()
            assert inner == path.with_suffix(".csv").name
            head = io.BytesIO(zf.read(inner)).readline()
            assert re.fullmatch(rb'("[A-Z0-9_]+",)*"[A-Z0-9_]+"\r\n', head)
    assert not list(tmp_path.glob("*.csv"))


def test_ingestion_checks_accept_the_generated_files(generated, contracts):
    """The pipeline's own header and row checks (cms_pipeline.ingest) find nothing wrong."""
    for kind, path in generated.items():
        contract = contracts[KINDS[kind].contract]
        header = check_header(
            path.open("rb").readline(), contract.column_names, contract.delimiter, "utf-8"
        )
        assert header.matches, (kind, header.describe())
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(contract.column_names, pa.string()),
                strings_can_be_null=True,
            ),
        )
        for batch in table.to_batches():
            found = find_violations(batch, contract)
            assert len(found) == 0, (kind, found.columns[:3], found.reasons[:3])
