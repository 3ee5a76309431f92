"""Which bronze tables feed a model, read from a dbt manifest's parent map."""

from __future__ import annotations

import json

from cms_pipeline.cli.pipeline import exit_code
from cms_pipeline.dbt_lineage import (
    fed_by_nothing,
    missing_inputs,
    read_manifest,
    upstream_sources,
)

P = "cms_pipeline"
MANIFEST = {
    "parent_map": {
        f"source.{P}.bronze.inpatient_claims": [],
        f"source.{P}.bronze.carrier_claims": [],
        f"model.{P}.stg_inpatient_claims": [f"source.{P}.bronze.inpatient_claims"],
        f"model.{P}.stg_carrier_claims": [f"source.{P}.bronze.carrier_claims"],
        f"model.{P}.carrier_claims": [f"model.{P}.stg_carrier_claims", f"seed.{P}.codebook"],
        f"model.{P}.fct_claims": [f"model.{P}.stg_inpatient_claims", f"model.{P}.carrier_claims"],
        f"model.{P}.codebook_only": [f"seed.{P}.codebook"],
        f"seed.{P}.codebook": [],
        f"test.{P}.not_null_fct_claims": [f"model.{P}.fct_claims"],
    }
}


def test_upstream_sources_walk_every_path_to_bronze():
    assert upstream_sources(MANIFEST, "fct_claims") == {"inpatient_claims", "carrier_claims"}
    assert upstream_sources(MANIFEST, "carrier_claims") == {"carrier_claims"}
    assert upstream_sources(MANIFEST, "codebook_only") == set()
    assert upstream_sources(MANIFEST, "no_such_model") == set()
    assert upstream_sources({}, "fct_claims") == set()


def test_a_model_is_not_delivered_only_when_none_of_its_sources_is():
    delivered = {"inpatient_claims"}
    assert fed_by_nothing(MANIFEST, "carrier_claims", delivered)
    assert not fed_by_nothing(MANIFEST, "fct_claims", delivered)  # partly fed: checked
    assert not fed_by_nothing(MANIFEST, "codebook_only", delivered)  # seeds only: checked
    assert missing_inputs(MANIFEST, "fct_claims", delivered) == {"carrier_claims"}
    assert missing_inputs(MANIFEST, "fct_claims", delivered | {"carrier_claims"}) == set()


def test_read_manifest_follows_the_file(tmp_path):
    path = tmp_path / "manifest.json"
    assert read_manifest(path) == {}
    path.write_text(json.dumps(MANIFEST))
    assert read_manifest(path) == MANIFEST


def test_run_exit_status_tells_clean_from_rejections_from_failed():
    assert exit_code({"ok": True, "rejected_files": []}) == 0
    assert exit_code({"ok": True, "rejected_files": [{"file": "x.csv"}]}) == 3
    assert exit_code({"ok": False, "rejected_files": [{"file": "x.csv"}]}) == 1
