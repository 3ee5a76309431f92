"""Request schema derived from model features, and error messages (no JVM)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from models_ml.api_guards import field_errors
from models_ml.schema import (
    Feature,
    records_to_columns,
    request_model,
    source_type,
    with_source_types,
)
from models_ml.scored_rows import predictions_frame, predictions_schema
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


def test_the_spark_schema_of_predictions_is_the_frames(settings):
    """Executors return predictions_frame's rows under predictions_schema: same names in
    the same order, and types Arrow converts the frame's values to (no JVM needed)."""
    import pyarrow as pa
    from pyspark.sql import types as T
    from pyspark.sql.pandas.types import to_arrow_schema

    uc = load_use_case(settings, "readmission_30d")
    rows = T.StructType([
        T.StructField("admission_id", T.StringType()), T.StructField("desynpuf_id", T.StringType()),
        T.StructField("discharge_year", T.IntegerType()),
        T.StructField("discharge_date", T.DateType()), T.StructField("age", T.IntegerType()),
    ])  # fmt: skip
    frame = pd.DataFrame(
        {"admission_id": ["a"], "desynpuf_id": ["x"], "discharge_year": np.array([2010], "int32"),
         "discharge_date": [date(2010, 12, 20)], "age": np.array([70], "int32")}
    )  # fmt: skip
    at = datetime(2026, 1, 2, tzinfo=UTC)
    out = predictions_frame(frame, np.array([0.2]), np.array([1]), uc, "3", at, date(2010, 12, 31))
    schema = predictions_schema(rows, uc)
    assert schema.names == list(out.columns)
    table = pa.Table.from_pandas(out, schema=to_arrow_schema(schema), preserve_index=False)
    assert table.to_pylist()[0]["score"] == 0.2 and table.num_rows == 1


TYPED = [
    Feature(name="has_esrd", type="categorical", levels=["False", "True"], source_type="boolean"),
    Feature(name="stays", type="numeric", source_type="integer"),
    Feature(name="cost", type="numeric", source_type="decimal"),
    Feature(name="ratio", type="numeric", source_type="double"),
    Feature(name="state_code", type="categorical", levels=["01", "33"], source_type="string"),
]
TYPED_RECORD = {"has_esrd": True, "stays": 2, "cost": 1.25, "ratio": 0.5, "state_code": "33"}


def _typed(record: dict):
    return request_model("demo_case", TYPED, max_records=10).model_validate({"records": [record]})


def test_typed_fields_take_json_booleans_integers_and_numbers():
    req = _typed(TYPED_RECORD)
    cols = records_to_columns(req.records, TYPED)
    assert cols == {k: [v] for k, v in TYPED_RECORD.items()}
    assert cols["has_esrd"] == [True] and type(cols["stays"][0]) is int
    # nulls are missing values; a whole 3.0 is an integer; codes may still be numbers
    req = _typed({**TYPED_RECORD, "has_esrd": None, "stays": 3.0, "state_code": 33})
    assert records_to_columns(req.records, TYPED)["stays"] == [3]
    assert records_to_columns(req.records, TYPED)["state_code"] == ["33"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("has_esrd", "True"),  # the string is not a boolean
        ("has_esrd", "true"),
        ("has_esrd", 1),
        ("stays", 1.5),
        ("stays", "2"),
        ("stays", True),
        ("cost", "1.25"),
        ("ratio", float("nan")),
    ],
)
def test_typed_fields_refuse_other_json_types(field, value):
    with pytest.raises(ValidationError) as err:
        _typed({**TYPED_RECORD, field: value})
    assert [e["field"] for e in field_errors(err.value.errors())] == [f"records.0.{field}"]


def test_the_json_schema_shows_the_feature_types():
    props = request_model("demo_case", TYPED, max_records=10).model_json_schema()["$defs"][
        "DemoCaseRecord"
    ]["properties"]
    kinds = {name: {t.get("type") for t in p["anyOf"]} for name, p in props.items()}
    assert kinds == {
        "has_esrd": {"boolean", "null"},
        "stays": {"integer", "null"},
        "cost": {"number", "null"},
        "ratio": {"number", "null"},
        "state_code": {"string", "null"},
    }


@pytest.mark.parametrize(
    ("spark", "expected"),
    [
        ("int", "integer"),
        ("bigint", "integer"),
        ("smallint", "integer"),
        ("double", "double"),
        ("decimal(12,2)", "decimal"),
        ("boolean", "boolean"),
        ("string", "string"),
        ("date", "date"),
        ("array<int>", None),
    ],
)
def test_source_type_from_the_spark_type(spark, expected):
    assert source_type(spark) == expected


def test_source_types_come_from_features_json_when_it_records_them(tmp_path):
    plain = [Feature(name="stays", type="numeric"), Feature(name="sex_code", type="categorical")]
    path = tmp_path / "features.json"
    assert with_source_types(plain, path) == plain  # no file
    path.write_text(json.dumps({"features": [{"name": "stays", "type": "numeric"}]}))
    assert with_source_types(plain, path) == plain  # an older version: no types recorded
    recorded = [{"name": "stays", "type": "numeric", "source_type": "integer"}]
    path.write_text(json.dumps({"features": recorded}))
    typed = with_source_types(plain, path)
    assert [f.source_type for f in typed] == ["integer", None]


def test_booleans_are_spelled_as_h2o_names_a_parquet_boolean_columns_levels():
    """H2O imports a Parquet boolean column as an enum with levels "False"/"True"
    (checked on H2O 3.46); JSON true (Python True) and Spark's numpy booleans must
    find those levels."""
    from models_ml.mojo import _level

    assert [_level(v) for v in (True, False, np.True_, np.False_)] == [
        "True",
        "False",
        "True",
        "False",
    ]
    assert _level(None) is None and _level(3.0) == "3" and _level("01") == "01"
