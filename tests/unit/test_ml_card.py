"""The model card on constructed data (no JVM): subgroup flags, small groups, escaping,
every section present, and JSON-safe data."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from models_ml import card
from models_ml import metrics as m

SECTIONS = (
    "cohort",
    "data",
    "metrics",
    "calibration",
    "top-decile",
    "subgroups",
    "features",
    "shap",
    "promotion",
)


def test_fast_replicate_metrics_equal_binary_metrics():
    """The bootstrap's O(n) metrics on sorted rows are binary_metrics (distinct scores)."""
    rng = np.random.default_rng(4)
    y = (rng.random(777) < 0.2).astype(float)
    p = rng.random(777) * 0.6 + 0.3 * y
    idx = rng.integers(0, 777, 777)
    order = np.argsort(p[idx], kind="mergesort")
    fast = m._sorted_metrics(y[idx][order], p[idx][order])
    slow = m.binary_metrics(y[idx], p[idx])
    assert fast == pytest.approx({k: slow[k] for k in fast}, rel=1e-12, abs=1e-12)
    # AUC and AP with ties, as scikit-learn counts them
    q = np.round(p, 1)[idx]
    order = np.argsort(q, kind="mergesort")
    tied = m._sorted_metrics(y[idx][order], q[order])
    assert tied["auc"] == pytest.approx(m.roc_auc(y[idx], q))
    assert tied["aucpr"] == pytest.approx(m.average_precision(y[idx], q))


def frame(seed: int = 0, rows_per_sex: int = 600) -> pd.DataFrame:
    """Women scored well, men at random; a race group of 30 rows; ages in all bands."""
    rng = np.random.default_rng(seed)
    n = 2 * rows_per_sex
    y = (rng.random(n) < 0.3).astype(int)
    sex = np.repeat(["1", "2"], rows_per_sex)
    good = 1 / (1 + np.exp(-(rng.normal(size=n) + 2.5 * y)))
    score = np.where(sex == "2", good, rng.random(n))
    race = np.where(np.arange(n) < 30, "3", rng.choice(["1", "2"], n))
    return pd.DataFrame(
        {
            "label": y,
            "p1": score,
            "sex_code": sex,
            "race_code": race,
            "age": rng.integers(60, 100, n),
            "state_code": rng.choice(["05", "33", None], n),
        }
    )


BOOKS = {"sex_code": {"1": "Male", "2": "Female"}, "state_code": {"05": "CA"}}


def test_groups_far_from_the_overall_auc_are_flagged():
    sub = card.subgroup_metrics(frame(), "label", "p1", BOOKS)
    dims = {d["dimension"]: d for d in sub["dimensions"]}
    assert list(dims) == ["sex", "race", "age band", "state"]
    sex = {g["group"]: g for g in dims["sex"]["groups"]}
    assert set(sex) == {"1 Male", "2 Female"}
    # men are scored at random, women well: both far from the overall AUC
    assert sex["1 Male"]["flagged"] and sex["1 Male"]["auc_gap"] < -card.AUC_GAP_FLAG
    assert sex["2 Female"]["flagged"] and sex["2 Female"]["auc_gap"] > card.AUC_GAP_FLAG
    assert "sex 1 Male" in sub["flagged"] and "sex 2 Female" in sub["flagged"]
    assert sum(g["rows"] for g in sex.values()) == 1200
    assert sex["1 Male"]["mean_score"] == pytest.approx(frame()["p1"][:600].mean())
    assert sub["overall_auc"] == pytest.approx(m.roc_auc(frame()["label"], frame()["p1"]))


def test_small_groups_say_too_few_rows_and_get_no_auc():
    sub = card.subgroup_metrics(frame(), "label", "p1", BOOKS)
    race = {
        g["group"]: g for d in sub["dimensions"] if d["dimension"] == "race" for g in d["groups"]
    }
    assert race["3"]["rows"] == 30
    assert race["3"]["status"] == card.TOO_FEW and race["3"]["auc"] is None
    assert not race["3"]["flagged"]
    states = {
        g["group"] for d in sub["dimensions"] if d["dimension"] == "state" for g in d["groups"]
    }
    assert states == {"05 CA", "33", card.MISSING}  # labelled, unlabelled, null


def test_one_class_group_is_too_few_rows():
    f = frame()
    f.loc[f.sex_code == "1", "label"] = 0
    sex = card.subgroup_metrics(f, "label", "p1")["dimensions"][0]["groups"]
    assert sex[0]["status"] == card.TOO_FEW and sex[0]["positives"] == 0


@pytest.mark.parametrize(
    ("age", "band"),
    [(64, "under 65"), (65, "65-74"), (84, "75-84"), (85, "85+"), (None, "(missing)")],
)
def test_age_bands(age, band):
    assert card.age_band(age) == band


def test_mean_abs_contributions_ranks_features_without_the_bias():
    contributions = pd.DataFrame(
        {"a": [1.0, -1.0], "b": [0.5, 0.5], "c": [-3.0, 0.0], "BiasTerm": [9.0, 9.0]}
    )
    top = card.mean_abs_contributions(contributions, top=2)
    assert [r["feature"] for r in top] == ["c", "a"]
    assert top[0]["mean_abs"] == 1.5 and top[0]["mean"] == -1.5 and top[1]["mean"] == 0.0


def data(**overrides) -> dict:
    f = frame()
    y, p = f["label"].to_numpy(), f["p1"].to_numpy()
    use_case = {
        "name": "readmission_30d",
        "description": "Readmitted <b>within</b> 30 days",
        "table": "gold.features_readmission",
        "target": "is_readmitted_30d",
        "population": {
            "training_flag": "is_training_row",
            "prediction_date": "discharge_date",
            "label_horizon_days": 30,
        },
        "split": {
            "time_column": "discharge_year",
            "test_periods": 1,
            "group_column": "desynpuf_id",
        },
    }
    lineage = {
        "snapshot": {"rows_train": 5000, "rows_test": 1200, "files_sha256": "f" * 64},
        "bronze_versions": {"inpatient_claims": 4},
        "dbt_manifest_sha256": "abc123",
        "git_commit": "0123abc",
    }
    args = {
        "use_case": use_case,
        "version": "3",
        "run_id": "r1",
        "lineage": lineage,
        "intervals": m.bootstrap_intervals(y, p, n_resamples=100),
        "calibration_bins": m.calibration_bins(y, p),
        "subgroups": card.subgroup_metrics(f, "label", "p1", BOOKS),
        "varimp": [("prior_admissions_12m", 1.0), ("age", 0.4)],
        "shap": {
            "model_id": "GBM_1",
            "algo": "gbm",
            "rows": 1200,
            "note": "",
            "features": [{"feature": "prior_admissions_12m", "mean_abs": 0.3, "mean": 0.01}],
        },
        "promotion": {"decision": "no champion to beat; auc=0.7000", "gain": None},
        "leader": {"model_id": "GBM_1", "algo": "gbm"},
        "docs": {
            "table": "Index admissions <script>alert(1)</script>",
            "label": "1 when readmitted",
        },
        "bootstrap": {"resamples": 100, "seed": 0, "level": 0.95},
    }
    return card.card_data(**{**args, **overrides})


def test_card_data_is_json_and_carries_the_numbers():
    d = data()
    assert json.loads(json.dumps(d, allow_nan=False)) == d  # no NaN, no numpy
    auc = next(r for r in d["metrics"] if r["metric"] == "auc")
    assert auc["low"] <= auc["estimate"] <= auc["high"]
    lift = d["top_decile"]["lift"]
    assert lift["low"] <= lift["estimate"] <= lift["high"] and lift["replicates"] == 100
    assert d["data"]["rows_test"] == 1200 and d["data"]["bronze_versions"] == {
        "inpatient_claims": 4
    }
    assert d["label"]["column"] == "is_readmitted_30d" and d["version"] == "3"


def test_html_has_every_section_and_escapes_text():
    d = data()
    html = card.render_html(d, calibration_png=b"\x89PNG fake")
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Readmitted &lt;b&gt;within&lt;/b&gt; 30 days" in html
    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in html  # base64 of the bytes
    assert re.search(r'<tr class="flagged"><td>1 Male</td>', html)
    assert card.TOO_FEW in html
    assert "abc123" in html and "prior_admissions_12m" in html
    assert "<td>inpatient_claims 4</td>" in html  # lineage as text, not a Python dict


def test_html_without_shap_or_plot_says_why(tmp_path):
    d = data(shap={"model_id": None, "rows": 0, "features": [], "note": "GLM_1: no TreeSHAP"})
    paths = card.write_card(d, tmp_path, tmp_path / "missing.png")
    html = paths["html"].read_text()
    assert "Not available: GLM_1: no TreeSHAP" in html and "data:image/png" not in html
    assert json.loads(paths["json"].read_text()) == d


def test_markdown_summary_names_the_numbers_and_the_card():
    text = card.markdown_summary(data(), "/lake/card.html")
    assert "**readmission_30d** v3" in text and "| auc |" in text
    assert "sex 1 Male" in text and "/lake/card.html" in text
    assert "cms-pipeline models card readmission_30d --version 3" in text


def test_codebooks_and_dbt_docs_are_read_from_the_project():
    from cms_pipeline.config import PROJECT_ROOT

    books = card.load_codebooks(PROJECT_ROOT / "dbt_project" / "seeds")
    assert books["sex_code"]["2"] == "Female" and books["race_code"]["5"] == "Hispanic"
    docs = card.dbt_docs(
        PROJECT_ROOT / "dbt_project" / "models", "gold.features_readmission", "is_readmitted_30d"
    )
    assert "30 days" in docs["label"] and docs["table"]


def test_h2o_errors_shrink_to_their_java_message():
    from models_ml.card_inputs import _h2o_reason

    raw = (
        "Job with key $03 failed with an exception: water.exceptions."
        "H2OIllegalArgumentException: unimplemented: GLM needs a background frame.\n"
        "stacktrace: \nwater.exceptions.H2OIllegalArgumentException: at hex.glm"
    )
    assert _h2o_reason(Exception(raw)) == "unimplemented: GLM needs a background frame."
    assert _h2o_reason(ValueError("no\nJava here")) == "no Java here"


def test_the_train_flow_publishes_the_card_summary(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from flows import artifacts
    from flows import models as flow_models

    paths = card.write_card(data(), tmp_path)
    published = []
    monkeypatch.setattr(artifacts, "markdown", lambda *a, **k: published.append((a, k)))
    result = SimpleNamespace(
        use_case="readmission_30d", model_version="3", card_path=str(paths["html"])
    )
    flow_models.model_card(result)
    (key, text), kwargs = published[0]
    assert key == "model-card-readmission_30d" and str(paths["html"]) in text
    assert "| auc |" in text and kwargs["description"] == "model card of readmission_30d v3"
