"""Registry rules on a real MLflow SQLite store, without H2O (versions hold dummy files)."""

from __future__ import annotations

import pytest

from cms_pipeline.config import load_settings
from models_ml import registry


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    """One MLflow store for the module (creating its tables is the slow part)."""
    return load_settings(lake=str(tmp_path_factory.mktemp("registry") / "lake"))


def _version(settings, tmp_path, use_case: str, auc: float) -> str:
    c = registry.client(settings)
    run = c.create_run(registry.experiment_id(settings, use_case))
    mojo = tmp_path / f"art-{auc}" / registry.MOJO_DIR
    mojo.mkdir(parents=True)
    (mojo / registry.MOJO_FILE).write_bytes(b"not a real mojo")
    c.log_metric(run.info.run_id, "test_auc", auc)
    c.set_tag(run.info.run_id, "table", "gold.features_x")
    c.log_artifacts(run.info.run_id, str(mojo.parent))
    c.set_terminated(run.info.run_id)
    return str(registry.register_version(settings, use_case, run.info.run_id, {}).version)


def test_promote_rollback_and_history(settings, tmp_path):
    v1 = _version(settings, tmp_path, "demo_case", 0.61)
    v2 = _version(settings, tmp_path, "demo_case", 0.66)
    assert (v1, v2) == ("1", "2")
    assert registry.champion(settings, "demo_case") is None
    with pytest.raises(registry.RegistryError, match="no earlier champion"):
        registry.rollback(settings, "demo_case")

    registry.promote(settings, "demo_case", v1, "first")
    out = registry.promote(settings, "demo_case", v2, "better")
    assert out["previous"] == "1" and out["champion"] == "2"
    shown = registry.show_model(settings, "demo_case")
    assert shown["champion"] == "2" and shown["champion_history"] == ["1", "2"]
    assert [v["metrics"]["test_auc"] for v in shown["versions"]] == [0.61, 0.66]
    assert shown["versions"][1]["tags"]["promotion_reason"] == "better"

    assert registry.rollback(settings, "demo_case")["champion"] == "1"
    assert str(registry.champion(settings, "demo_case").version) == "1"
    [listed] = [m for m in registry.list_models(settings) if m["use_case"] == "demo_case"]
    assert listed["champion"] == "1" and listed["versions"] == 2 and listed["latest"] == 2
    assert listed["champion_metrics"] == {"test_auc": 0.61}

    catalog = [e for e in registry.model_catalog(settings) if e["use_case"] == "demo_case"]
    assert [(e["version"], e["is_champion"]) for e in catalog] == [("1", True), ("2", False)]
    assert catalog[0]["table"] == "gold.features_x"


def test_unknown_versions_and_models_are_named(settings, tmp_path):
    _version(settings, tmp_path, "second_case", 0.6)
    with pytest.raises(registry.RegistryError, match="no version 7"):
        registry.promote(settings, "second_case", "7", "x")
    with pytest.raises(registry.RegistryError, match="cms-pipeline train other_case"):
        registry.show_model(settings, "other_case")


def test_download_gives_the_mojo_files(settings, tmp_path):
    v = _version(settings, tmp_path, "third_case", 0.6)
    paths = registry.download_version(settings, "third_case", v, tmp_path / "cache")
    assert paths["mojo"].read_bytes() == b"not a real mojo"


def test_tracking_uri_defaults_to_sqlite_under_metadata(settings, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert registry.tracking_uri(settings).startswith("sqlite:///")
    assert settings.metadata in registry.tracking_uri(settings)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert registry.tracking_uri(settings) == "http://mlflow:5000"


def test_registry_writes_change_the_store_stamp(settings, tmp_path):
    """The REST API asks the registry for champions only when this stamp changed."""
    store = registry.local_store(settings)
    v = _version(settings, tmp_path, "stamp_case", 0.6)  # the first write creates the store
    assert store is not None and store.exists()
    before = registry.store_stamp(store)
    assert before == registry.store_stamp(store)
    registry.promote(settings, "stamp_case", v, "first")
    assert registry.store_stamp(store) != before
    assert registry.store_stamp(None) is None
