"""Use-case YAML: validation, feature selection, splits (no JVM)."""

from __future__ import annotations

import shutil

import pytest

from cms_pipeline.config import ConfigError, load_settings
from models_ml.data import FeatureTableError, feature_types, split_periods
from models_ml.usecase import list_use_cases, load_use_case

BOTH = ["high_cost_next_year", "readmission_30d"]
POPULATION = (
    "population: {training_flag: known, prediction_date: day, label_horizon_days: 30,"
    " scoring_window_days: 30}\n"
)


def test_shipped_use_cases_load(settings):
    assert set(BOTH) <= set(list_use_cases(settings))
    for name in BOTH:
        uc = load_use_case(settings, name)
        assert uc.name == name
        assert uc.table.startswith("gold.features_")
        assert uc.automl.max_models >= 1
        assert uc.predictions_table == f"gold.predictions_{name}"
        # the population's columns and the beneficiary (CV groups) are never features
        assert {uc.population.training_flag, uc.population.prediction_date} <= uc.non_features
        assert uc.split.group_column == "desynpuf_id" in uc.non_features


def test_missing_population_is_named(config_copy, tmp_path):
    path = config_copy / "ml" / "no_population.yaml"
    path.write_text(
        "target: y\nid_columns: [id]\nsplit: {time_column: yr}\nautoml: {max_models: 2}\ntable: t\n"
    )
    settings = load_settings(config_dir=config_copy, lake=str(tmp_path / "lake"))
    with pytest.raises(ConfigError, match="population"):
        load_use_case(settings, "no_population")


@pytest.fixture
def config_copy(tmp_path, settings):
    """A copy of config/ to add or break use-case files in."""
    target = tmp_path / "config"
    shutil.copytree(settings.config_dir, target)
    return target


def test_new_use_case_needs_only_a_yaml_file(config_copy, tmp_path):
    (config_copy / "ml" / "fall_risk.yaml").write_text(
        "table: gold.features_falls\ntarget: is_fall\nid_columns: [desynpuf_id]\n"
        "split: {time_column: year}\nautoml: {max_models: 3}\n"
        "population: {training_flag: known, prediction_date: day,"
        " label_horizon_days: 30, scoring_window_days: 30}\n"
    )
    settings = load_settings(config_dir=config_copy, lake=str(tmp_path / "lake"))
    uc = load_use_case(settings, "fall_risk")
    assert "fall_risk" in list_use_cases(settings)
    assert uc.automl.seed == 42 and uc.promotion.metric == "auc"
    assert (uc.bootstrap.resamples, uc.bootstrap.level) == (1000, 0.95)  # the defaults


def test_shipped_use_cases_state_their_bootstrap(settings):
    """Each shipped file says how its intervals are drawn, as the defaults would."""
    for name in list_use_cases(settings):
        assert "bootstrap" in load_use_case(settings, name).model_fields_set, name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "target: y\nid_columns: [id]\nsplit: {time_column: yr}\nautoml: {max_models: 0}\n"
            "table: t\n" + POPULATION,
            "automl.max_models",
        ),
        (
            "target: y\nid_columns: [id, y]\nsplit: {time_column: yr}\nautoml: {max_models: 2}\n"
            "table: t\n" + POPULATION,
            "also listed as id or excluded",
        ),
        (
            "target: y\nid_columns: [id]\nsplit: {time_column: yr}\nautoml: {max_models: 2}\n"
            "table: t\nsurprise: 1\n" + POPULATION,
            "surprise",
        ),
        (
            "target: y\nid_columns: [id]\nsplit: {time_column: yr}\n"
            "automl: {max_models: 2, exclude_algos: [Magic]}\ntable: t\n" + POPULATION,
            "exclude_algos",
        ),
        (
            "target: y\nid_columns: [id]\nsplit: {time_column: yr}\nautoml: {max_models: 2}\n"
            "table: t\nbootstrap: {resamples: 10}\n" + POPULATION,
            "bootstrap.resamples",
        ),
    ],
)
def test_bad_use_case_names_file_and_key(config_copy, tmp_path, text, expected):
    path = config_copy / "ml" / "broken.yaml"
    path.write_text(text)
    settings = load_settings(config_dir=config_copy, lake=str(tmp_path / "lake"))
    with pytest.raises(ConfigError) as err:
        load_use_case(settings, "broken")
    assert str(path) in str(err.value) and expected in str(err.value)


def test_unknown_use_case_lists_known_ones(settings):
    with pytest.raises(ConfigError, match="readmission_30d"):
        load_use_case(settings, "no_such_case")


def test_ids_label_split_and_excluded_columns_are_never_features(settings):
    uc = load_use_case(settings, "readmission_30d")
    types = {
        "admission_id": "string",
        "desynpuf_id": "string",
        "discharge_date": "date",
        "discharge_year": "int",
        "is_training_row": "boolean",
        "is_readmitted_30d": "int",
        "age": "int",
        "state_code": "string",
        "cost": "double",
        "n_prior": "bigint",
    }
    features, categorical = feature_types(uc, types)
    assert features == ["age", "state_code", "cost", "n_prior"]
    assert categorical == ["state_code"]
    assert not set(features) & uc.non_features


def test_feature_table_errors_say_what_to_change(settings):
    uc = load_use_case(settings, "readmission_30d")
    base = {
        "admission_id": "string",
        "desynpuf_id": "string",
        "discharge_date": "date",
        "discharge_year": "int",
        "is_training_row": "boolean",
        "is_readmitted_30d": "int",
    }
    with pytest.raises(FeatureTableError, match="is_readmitted_30d"):
        feature_types(uc, {k: v for k, v in base.items() if k != "is_readmitted_30d"})
    with pytest.raises(FeatureTableError, match="exclude_columns"):
        feature_types(uc, {**base, "admitted_at": "timestamp"})
    with pytest.raises(FeatureTableError, match="no feature columns"):
        feature_types(uc, base)


def test_temporal_split_tests_on_the_last_periods():
    assert split_periods([2010, 2008, None, 2009], 1, "t", "yr") == ([2008, 2009], [2010])
    assert split_periods([2008, 2009, 2010], 2, "t", "yr") == ([2008], [2009, 2010])
    with pytest.raises(FeatureTableError, match="need more than"):
        split_periods([2009], 1, "t", "yr")


def test_config_hash_changes_with_the_config(settings):
    uc = load_use_case(settings, "readmission_30d")
    same = load_use_case(settings, "readmission_30d")
    other = uc.model_copy(update={"automl": uc.automl.model_copy(update={"seed": 7})})
    assert uc.config_hash() == same.config_hash() != other.config_hash()
