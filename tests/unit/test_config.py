"""Typed configuration: read once, and a bad file names the file, the key and what is expected."""

from __future__ import annotations

import shutil

import pytest

from cms_pipeline.config import CONFIG_DIR, ConfigError, load_settings


@pytest.fixture
def config_dir(tmp_path):
    target = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, target)
    return target


def test_contracts_expand_numbered_columns_in_file_order():
    settings = load_settings(lake="/tmp/unused")
    carrier = settings.sources["carrier_claims"]
    assert len(carrier.columns) == 142
    assert carrier.column_names[4:6] == ["ICD9_DGNS_CD_1", "ICD9_DGNS_CD_2"]
    inpatient = settings.sources["inpatient_claims"].column_names
    assert inpatient[-1] == "HCPCS_CD_45"


def test_file_names_give_sample_year_and_part():
    settings = load_settings(lake="/tmp/unused")
    contract, attrs = settings.contract_for("DE1_0_2009_Beneficiary_Summary_File_Sample_12.zip")
    assert contract.table == "beneficiary_summary"
    assert attrs == {"year": "2009", "sample": "12", "ext": "zip"}
    contract, attrs = settings.contract_for("DE1_0_2008_to_2010_Carrier_Claims_Sample_3B.csv")
    assert contract.table == "carrier_claims" and attrs["part"] == "B"
    assert settings.contract_for("notes.csv") is None


def test_lake_override_moves_the_metadata_with_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CMS_PIPELINE_LAKE", raising=False)
    settings = load_settings(lake=str(tmp_path / "elsewhere"))
    assert settings.lake == str(tmp_path / "elsewhere")
    assert settings.metadata.startswith(settings.lake)
    monkeypatch.setenv("CMS_PIPELINE_LAKE", "s3://bucket/lake")
    assert load_settings().lake == "s3://bucket/lake"


def test_profile_is_chosen_by_one_environment_variable(monkeypatch):
    monkeypatch.setenv("CMS_PIPELINE_ENV", "cluster")
    settings = load_settings()
    assert settings.profile_name == "cluster" and settings.spark.native_delta is False
    monkeypatch.setenv("CMS_SPARK_NATIVE_DELTA", "true")  # a cluster with the Delta jars
    assert load_settings().spark.native_delta is True
    monkeypatch.setenv("CMS_PIPELINE_ENV", "nope")
    with pytest.raises(ConfigError, match="profile 'nope'.*expected one of"):
        load_settings()


def test_unknown_key_names_file_and_key(config_dir):
    path = config_dir / "pipeline.yaml"
    path.write_text(path.read_text().replace("  local:\n", "  local:\n    lakee: x\n", 1))
    with pytest.raises(ConfigError) as err:
        load_settings(config_dir)
    assert str(path) in str(err.value) and "profiles.local.lakee" in str(err.value)


def test_bad_contract_type_names_source_and_column(config_dir):
    path = config_dir / "sources" / "synpuf.yaml"
    path.write_text(
        path.read_text().replace(
            "{name: BENE_BIRTH_DT, type: date", "{name: BENE_BIRTH_DT, type: datetime", 1
        )
    )
    with pytest.raises(ConfigError) as err:
        load_settings(config_dir)
    message = str(err.value)
    assert "synpuf.yaml" in message and "sources.beneficiary_summary.columns.1.type" in message
    assert "'id', 'string', 'date', 'integer' or 'decimal'" in message


def test_invalid_yaml_and_missing_file(config_dir):
    (config_dir / "pipeline.yaml").write_text("profiles: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(config_dir)
    (config_dir / "pipeline.yaml").unlink()
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(config_dir)
