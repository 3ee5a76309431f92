"""The request schema of a model, derived from its features (no JVM needed), and
`FeatureSpec`, the model's features.json, written at training and read wherever the
model is scored.

A feature is numeric or categorical (with its training levels), and, for versions
trained since features.json records it, the type of its column in the feature table
(`source_type`): booleans are then JSON booleans, integers integers, decimals and
doubles numbers. Records are validated before they reach Java: the MOJO would silently
ignore unknown columns.
"""

from __future__ import annotations

import json
import keyword
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, create_model

FEATURES_FILE = "features.json"  # FeatureSpec, beside the MOJO in a version's mojo/ folder
SourceType = Literal["integer", "double", "decimal", "boolean", "string", "date"]


def _finite(value: Any) -> Any:
    # a level may be sent as a number (coerced to text), but never NaN or an infinity
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("Input should be a finite number or a text level")
    return value


def _number(value: Any) -> Any:
    # typed features take JSON numbers only: "12" or true for a count is a client bug
    if isinstance(value, str | bool):
        raise ValueError("Input should be a number")
    return value


Level = Annotated[str, BeforeValidator(_finite)]
FIELD_TYPES: dict[str, Any] = {
    "boolean": Annotated[bool, Strict()],  # true/false only, not "True" nor 1
    "integer": Annotated[int, BeforeValidator(_number)],  # 3 or 3.0, never 1.5
    "double": Annotated[float, BeforeValidator(_number)],
    "decimal": Annotated[float, BeforeValidator(_number)],
}


class Feature(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: Literal["numeric", "categorical"]
    levels: list[str] | None = None
    source_type: SourceType | None = None  # None: trained before it was recorded


class FeatureSpec(BaseModel):
    """features.json: a model's inputs as it was trained, one file per version beside its
    MOJO. Written by training (models_ml.run_artifacts.write_mojo); read by the MOJO scorer
    (source types), serving (id columns) and the MLflow model (models_ml.pyfunc).

    Every version's file loads: training has always written use_case, target, id_columns
    and features (without `source_type` before the source types were recorded); each field
    has a default, so a file with fewer keys loads too, and unknown keys are ignored."""

    model_config = ConfigDict(frozen=True)

    use_case: str | None = None
    target: str | None = None
    id_columns: list[str] = Field(default_factory=list)
    features: list[Feature] = Field(default_factory=list)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.model_dump(), indent=2))

    @classmethod
    def read(cls, path: Path) -> FeatureSpec:
        return cls.model_validate_json(path.read_text())


def source_type(spark_type: str) -> SourceType | None:
    """The feature table's column type (Spark's simpleString) as a request field type."""
    if spark_type in ("tinyint", "smallint", "int", "bigint"):
        return "integer"
    if spark_type in ("float", "double"):
        return "double"
    if spark_type.startswith("decimal"):
        return "decimal"
    return spark_type if spark_type in ("boolean", "string", "date") else None


def with_source_types(features: list[Feature], features_json: Path) -> list[Feature]:
    """`features` with the source types recorded at training in `features_json`, when
    the file exists and records them (older versions: unchanged)."""
    if not features_json.is_file():
        return features
    recorded = {f.name: f.source_type for f in FeatureSpec.read(features_json).features}
    return [f.model_copy(update={"source_type": recorded.get(f.name)}) for f in features]


def field_type(feature: Feature) -> Any:
    """The pydantic type of a feature's value: from its source type when known (a
    boolean the MOJO holds as the enum False/True is still a JSON boolean); otherwise a
    number, or a text level (numbers coerced to text, as codes often arrive)."""
    if feature.source_type == "boolean" or (
        feature.source_type in FIELD_TYPES and feature.type == "numeric"
    ):
        return FIELD_TYPES[feature.source_type]
    return float if feature.type == "numeric" else Level


def record_model(use_case: str, features: list[Feature]) -> type[BaseModel]:
    """A pydantic model for one record: every feature is required but may be null
    (missing value); numbers must be finite numbers; unknown fields are rejected.
    Unseen categorical levels are allowed and scored as missing, as H2O does."""
    fields: dict[str, Any] = {}
    for f in features:
        alias = f.name
        attr = f"f_{f.name}" if keyword.iskeyword(f.name) or not f.name.isidentifier() else f.name
        desc = f"levels seen in training: {f.levels[:20]}" if f.levels else "number"
        if f.source_type:
            desc += f" (feature table type: {f.source_type})"
        fields[attr] = (field_type(f) | None, Field(..., alias=alias, description=desc))
    title = "".join(part.title() for part in use_case.split("_")) + "Record"
    return create_model(
        title,
        __config__=ConfigDict(
            extra="forbid",
            populate_by_name=True,
            coerce_numbers_to_str=True,
            allow_inf_nan=False,  # NaN/Infinity literals (and 1e999) are not scores' inputs
        ),
        **fields,
    )


def request_model(use_case: str, features: list[Feature], max_records: int) -> type[BaseModel]:
    record = record_model(use_case, features)
    return create_model(
        record.__name__.replace("Record", "PredictRequest"),
        __config__=ConfigDict(extra="forbid"),
        records=(list[record], Field(..., min_length=1, max_length=max_records)),
    )


def records_to_columns(records: list[BaseModel], features: list[Feature]) -> dict[str, list]:
    """Validated records as one list per feature (by feature name)."""
    dumped = [r.model_dump(by_alias=True) for r in records]
    return {f.name: [d[f.name] for d in dumped] for f in features}
