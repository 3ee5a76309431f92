"""config/mappings: validation, expansion, coverage of every CMS column, docs in sync."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from cms_pipeline.config import ConfigError, load_settings
from cms_pipeline.mapping import TableMapping, expand_table, load_mappings
from cms_pipeline.mapping_doc import mapping_rows, render

DBT = Path(__file__).resolve().parents[2] / "dbt_project"


@pytest.fixture(scope="module")
def mappings():
    return load_mappings(load_settings())


def test_every_bronze_table_is_mapped(mappings):
    settings = load_settings()
    assert set(mappings) == {c.table for c in settings.sources.values()}


def test_every_cms_column_is_mapped_once(mappings):
    """No source column is silently dropped: each lands in a silver column or an unpivot."""
    settings = load_settings()
    for contract in settings.sources.values():
        m = mappings[contract.table]
        mapped = [c["source"] for c in m["columns"]] + [r["source"] for r in m["repeated"]]
        assert sorted(set(mapped)) == sorted(mapped), f"{contract.table}: a column mapped twice"
        missing = set(contract.column_names) - set(mapped)
        assert not missing, f"{contract.table}: CMS columns not mapped: {sorted(missing)}"


def test_every_repeated_column_feeds_an_unpivot_or_a_total(mappings):
    for table, m in mappings.items():
        used = {v for u in m["unpivots"].values() for r in u["rows"] for v in r["values"].values()}
        for r in m["repeated"]:
            # carrier line amounts are also summed into carrier_claims; all are unpivoted
            assert r["name"] in used, f"{table}: {r['source']} is typed but never unpivoted"


def test_unpivots_expand_numbered_columns(mappings):
    ip = mappings["inpatient_claims"]["unpivots"]
    positions = [r["position"] for r in ip["claim_diagnoses"]["rows"]]
    assert positions == list(range(0, 11))  # admitting diagnosis at 0, then 1..10
    assert ip["claim_diagnoses"]["rows"][0]["values"] == {"icd9_dgns_cd": "admitting_icd9_dgns_cd"}
    assert ip["claim_hcpcs"]["rows"][-1] == {"position": 45, "values": {"hcpcs_cd": "hcpcs_cd_45"}}
    lines = mappings["carrier_claims"]["unpivots"]["carrier_lines"]
    assert [r["position"] for r in lines["rows"]] == list(range(1, 14))
    assert lines["rows"][12]["values"]["line_payment_amount"] == "line_nch_pmt_amt_13"
    assert len(lines["rows"][0]["values"]) == len(lines["columns"])


def test_keys_are_translated_to_silver_names(mappings):
    assert mappings["inpatient_claims"]["key"] == ["claim_id", "segment"]
    assert mappings["beneficiary_summary"]["key_source"] == ["DESYNPUF_ID", "year"]


def _mapping(**over) -> TableMapping:
    body = {
        "source": "t",
        "model": "t",
        "key": ["ID"],
        "columns": [{"source": "ID", "name": "id"}],
        "repeated": [{"source": "CD_{n}", "repeat": [1, 2]}],
        "unpivots": {
            "codes": {
                "position": "pos",
                "columns": [{"name": "code"}],
                "items": [{"repeat": [1, 2], "values": {"code": "CD_{n}"}}],
            }
        },
    }
    body.update(over)
    return TableMapping(**body)


def test_unknown_source_column_is_named():
    with pytest.raises(ValueError, match="CD_2 is not a column of bronze.t"):
        expand_table(_mapping(), ["ID", "CD_1"])


def test_unpivot_of_unmapped_column_is_named():
    m = _mapping(repeated=[])
    with pytest.raises(ValueError, match=r"unpivots.codes: \['CD_1'\] not mapped"):
        expand_table(m, ["ID", "CD_1", "CD_2"])


def test_boolean_decoding_needs_boolean_type():
    with pytest.raises(ValueError, match="needs type boolean"):
        TableMapping(
            source="t",
            model="t",
            key=["F"],
            columns=[{"source": "F", "name": "f", "type": "string", "decode": "flag_1_2"}],
        )


def test_bad_mapping_file_names_file_and_key(tmp_path):
    config = tmp_path / "config"
    shutil.copytree(Path(load_settings().config_dir), config)
    path = config / "mappings" / "prescription_drug_events.yaml"
    data = yaml.safe_load(path.read_text())
    data["columns"][0]["type"] = "uuid"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_mappings(load_settings(config_dir=config))
    assert "prescription_drug_events.yaml" in str(err.value)
    assert "columns.0.type" in str(err.value)


def test_silver_yaml_documents_every_mapped_column(mappings):
    docs = yaml.safe_load((DBT / "models" / "silver" / "_silver__models.yml").read_text())
    documented = {m["name"]: {c["name"] for c in m["columns"]} for m in docs["models"]}
    for m in mappings.values():
        wanted = {c["name"] for c in m["columns"]}
        wanted |= {c["lookup"]["name"] for c in m["columns"] if c["lookup"]}
        assert wanted <= documented[m["model"]], f"{m['model']}: {wanted - documented[m['model']]}"
        for target, u in m["unpivots"].items():
            cols = {c["name"] for c in u["columns"]} | {u["position"]}
            assert cols <= documented[target], f"{target}: {cols - documented[target]}"


def test_every_model_file_is_documented():
    for layer in ("silver", "gold"):
        sql = {p.stem for p in (DBT / "models" / layer).rglob("*.sql")}
        documented = set()
        for yml in (DBT / "models" / layer).rglob("*.yml"):
            documented |= {m["name"] for m in yaml.safe_load(yml.read_text()).get("models", [])}
        assert sql <= documented, f"{layer}: models without docs: {sorted(sql - documented)}"


def test_mapping_document_lists_every_source_column(mappings):
    settings = load_settings()
    text = render(mappings)
    for contract in settings.sources.values():
        sources = {r["source"] for r in mapping_rows(mappings[contract.table])}
        assert set(contract.column_names) <= sources
        assert f"## bronze.{contract.table}" in text
