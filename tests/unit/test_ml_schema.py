"""Request schema derived from model features, and error messages (no JVM)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from models_ml.api import field_errors
from models_ml.batch import predictions_frame
from models_ml.schema import Feature, records_to_columns, request_model
from models_ml.usecase import load_use_case

FEATURES = [
    Feature(name="age", type="numeric"),
    Feature(name="state_code", type="categorical", levels=["01", "33"]),
    Feature(name="class", type="numeric"),  # a Python keyword as a column name
]


def test_valid_records_become_columns():
    model = request_model("demo_case", FEATURES, max_records=10)
    req = model.model_validate(
        {
            "records": [
                {"age": 70, "state_code": "33", "class": None},
                {
                    "age": "71.5",
                    "state_code": 1,
                    "class": 2,
                },  # numbers from strings, codes from ints
            ]
        }
    )
    cols = records_to_columns(req.records, FEATURES)
    assert cols == {"age": [70.0, 71.5], "state_code": ["33", "1"], "class": [None, 2.0]}


def test_one_message_per_bad_field():
    model = request_model("demo_case", FEATURES, max_records=10)
    with pytest.raises(ValidationError) as err:
        model.model_validate({"records": [{"age": "old", "state_code": "33", "extra": 1}]})
    fields = {e["field"]: e["message"] for e in field_errors(err.value.errors())}
    assert set(fields) == {"records.0.age", "records.0.extra", "records.0.class"}
    assert "number" in fields["records.0.age"]
    assert "not permitted" in fields["records.0.extra"]
    assert "required" in fields["records.0.class"].lower()


@pytest.mark.parametrize("body", [{"records": []}, {}, {"records": [{}] * 11}, {"rows": []}])
def test_request_envelope_is_checked(body):
    model = request_model("demo_case", FEATURES, max_records=10)
    with pytest.raises(ValidationError):
        model.model_validate(body)


def test_predictions_frame_carries_ids_version_and_time(settings):
    uc = load_use_case(settings, "readmission_30d")
    frame = pd.DataFrame(
        {
            "admission_id": ["a", "b"],
            "desynpuf_id": ["x", "y"],
            "discharge_year": [2010, 2010],
            "discharge_date": [date(2010, 12, 20), date(2010, 12, 28)],
            "age": [70, 80],
            "is_readmitted_30d": [0, 1],
        }
    )
    at = datetime(2026, 1, 2, tzinfo=UTC)
    as_of = date(2010, 12, 31)
    out = predictions_frame(
        frame, np.array([0.2, 0.7]), np.array([0, 1]), uc, "3", at, as_of, "20260102t000000_abc"
    )
    assert list(out.columns) == [
        "admission_id",
        "desynpuf_id",
        "discharge_year",
        "discharge_date",
        "score",
        "predicted_label",
        "model_name",
        "model_version",
        "as_of_date",
        "scored_at",
        "run_id",  # last: the history's partition column
    ]
    assert out["model_version"].tolist() == ["3", "3"]
    assert out["run_id"].tolist() == ["20260102t000000_abc"] * 2
    assert out["as_of_date"].tolist() == [as_of, as_of]
    assert "is_readmitted_30d" not in out and "age" not in out
