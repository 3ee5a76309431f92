"""The request schema of a model, derived from its features (no JVM needed).

A feature is numeric or categorical (with its training levels). Records are validated
before they reach Java: the MOJO would silently ignore unknown columns.
"""

from __future__ import annotations

import keyword
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model


def _finite(value: Any) -> Any:
    # a level may be sent as a number (coerced to text), but never NaN or an infinity
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("Input should be a finite number or a text level")
    return value


Level = Annotated[str, BeforeValidator(_finite)]


class Feature(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: Literal["numeric", "categorical"]
    levels: list[str] | None = None


def record_model(use_case: str, features: list[Feature]) -> type[BaseModel]:
    """A pydantic model for one record: every feature is required but may be null
    (missing value); numbers must be finite numbers; unknown fields are rejected.
    Unseen categorical levels are allowed and scored as missing, as H2O does."""
    fields: dict[str, Any] = {}
    for f in features:
        py_type = float if f.type == "numeric" else Level
        alias = f.name
        attr = f"f_{f.name}" if keyword.iskeyword(f.name) or not f.name.isidentifier() else f.name
        desc = f"levels seen in training: {f.levels[:20]}" if f.levels else "number"
        fields[attr] = (py_type | None, Field(..., alias=alias, description=desc))
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
