"""features.json as one typed schema (models_ml.schema.FeatureSpec): what training writes
is what serving reads, and the files of earlier versions still load (no JVM)."""

from __future__ import annotations

import json

from models_ml.schema import FEATURES_FILE, Feature, FeatureSpec, with_source_types

FEATURES = [
    Feature(name="age", type="numeric", source_type="integer"),
    Feature(name="state_code", type="categorical", levels=["01", "33"], source_type="string"),
]


def test_written_as_training_always_wrote_it_and_read_back_the_same(tmp_path):
    path = tmp_path / FEATURES_FILE
    spec = FeatureSpec(
        use_case="readmission_30d",
        target="readmitted_30d",
        id_columns=["desynpuf_id", "clm_id"],
        features=FEATURES,
    )
    spec.write(path)
    # the bytes of the dict training wrote before the typed schema
    before = {
        "use_case": "readmission_30d",
        "target": "readmitted_30d",
        "id_columns": ["desynpuf_id", "clm_id"],
        "features": [f.model_dump() for f in FEATURES],
    }
    assert path.read_text() == json.dumps(before, indent=2)
    assert FeatureSpec.read(path) == spec


def test_a_file_from_before_source_types_loads(tmp_path):
    """As versions trained before the source types were recorded wrote it."""
    path = tmp_path / FEATURES_FILE
    old = {
        "use_case": "readmission_30d",
        "target": "readmitted_30d",
        "id_columns": ["desynpuf_id"],
        "features": [
            {"name": "age", "type": "numeric", "levels": None},
            {"name": "state_code", "type": "categorical", "levels": ["01", "33"]},
        ],
    }
    path.write_text(json.dumps(old, indent=2))
    spec = FeatureSpec.read(path)
    assert spec.id_columns == ["desynpuf_id"]
    assert [f.source_type for f in spec.features] == [None, None]
    plain = [Feature(name="age", type="numeric"), Feature(name="state_code", type="categorical")]
    assert with_source_types(plain, path) == plain


def test_fewer_or_unknown_keys_load(tmp_path):
    path = tmp_path / FEATURES_FILE
    path.write_text(json.dumps({"features": [f.model_dump() for f in FEATURES], "extra": 1}))
    spec = FeatureSpec.read(path)
    assert spec.use_case is None and spec.target is None and spec.id_columns == []
    assert spec.features == FEATURES
