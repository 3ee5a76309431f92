"""Charlson and Elixhauser comorbidity tables for ICD-9-CM from `pycomorb`.

The code -> category rows are what pycomorb's own index functions flag for each ICD-9-CM
code (each code scored as a patient of its own), so its prefix matching and code cleaning
are the package's, not ours. Weights and the "more severe wins" rules come from the same
definitions pycomorb scores with. Indexes: Charlson with the Quan (2005) ICD-9-CM coding
algorithm, Elixhauser with the Quan (2005) ICD-9-CM coding algorithm.
"""

from __future__ import annotations

import polars as pl
from pycomorb import CharlsonComorbidityIndex, ElixhauserComorbidityIndex
from pycomorb.CharlsonComorbidityIndex import CANONICAL_RULES as CHARLSON_RULES
from pycomorb.CharlsonComorbidityIndex import DEFINITION_FILES as CHARLSON_FILES
from pycomorb.CustomComorbidityIndex import weighted_definitions
from pycomorb.ElixhauserComorbidityIndex import CANONICAL_RULES as ELIXHAUSER_RULES
from pycomorb.ElixhauserComorbidityIndex import DEFINITION_FILES as ELIXHAUSER_FILES

IMPLEMENTATION = "quan"  # Quan et al. 2005 ICD-9-CM coding algorithms (both indexes)
# index -> (pycomorb prefix, definition file, rules, the age/non-diagnosis categories to drop)
_INDEXES = {
    "charlson": ("CHARLSON", CHARLSON_FILES[IMPLEMENTATION], CHARLSON_RULES),
    "elixhauser": ("ELIXHAUSER", ELIXHAUSER_FILES[IMPLEMENTATION], ELIXHAUSER_RULES),
}


# The weightings pycomorb accepts for the Quan implementations with ICD-9 codes. Left out:
# Charlson's rcs and uk_shmi (bound to their ICD-10 implementations) and Elixhauser's
# ahrq (bound to the AHRQ implementations).
WEIGHT_SCHEMES = {
    "charlson": ("charlson", "quan", "schneeweiss"),
    "elixhauser": ("van_walraven", "thompson_29", "thompson_30", "swiss"),
}


def _definitions(index: str) -> tuple[pl.DataFrame, list[tuple[str, str]]]:
    prefix, file_name, rules = _INDEXES[index]
    definitions, exclusions = weighted_definitions(prefix, file_name, IMPLEMENTATION, rules)
    # Charlson's "Age" row is the age score, not a diagnosis category
    return definitions.filter(
        pl.col("icd9_codes").is_not_null() & (pl.col("category") != "Age")
    ), exclusions


def _flags(index: str, codes: list[str]) -> pl.DataFrame:
    frame = pl.DataFrame({"id": codes, "code": codes, "age": [0] * len(codes)})
    if index == "charlson":
        return CharlsonComorbidityIndex(
            frame, icd_version="icd9", implementation=IMPLEMENTATION, return_categories=True
        )
    return ElixhauserComorbidityIndex(
        frame.drop("age"), icd_version="icd9", implementation=IMPLEMENTATION, return_categories=True
    )


def code_categories(codes: list[str]) -> list[dict]:
    """(index, ICD-9-CM code, category) for every code pycomorb flags in either index."""
    rows = []
    for index in _INDEXES:
        categories = _definitions(index)[0]["category"].to_list()
        flags = _flags(index, sorted(set(codes)))
        for category in categories:
            for code in flags.filter(pl.col(category) == 1)["id"].to_list():
                rows.append(
                    {"comorbidity_index": index, "icd9_dx_code": code, "category": category}
                )
    rows.sort(key=lambda r: (r["comorbidity_index"], r["icd9_dx_code"], r["category"]))
    return rows


def weights() -> list[dict]:
    """(index, category, weighting scheme, weight) for every scheme pycomorb scores the
    Quan ICD-9-CM definitions with (WEIGHT_SCHEMES)."""
    rows = []
    for index in _INDEXES:
        definitions = _definitions(index)[0]
        for scheme in WEIGHT_SCHEMES[index]:
            for category, weight in definitions.select("category", f"{scheme}_weights").iter_rows():
                if weight is not None:
                    rows.append(
                        {
                            "comorbidity_index": index,
                            "category": category,
                            "weight_scheme": scheme,
                            "weight": int(weight),
                        }
                    )
    return rows


def exclusions() -> list[dict]:
    """(index, severe category, milder category): the milder one does not count when both do."""
    return [
        {"comorbidity_index": index, "severe_category": severe, "mild_category": mild}
        for index in _INDEXES
        for severe, mild in _definitions(index)[1]
    ]
