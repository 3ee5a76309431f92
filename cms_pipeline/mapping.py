"""Source → silver column mappings (`config/mappings/*.yaml`), validated and expanded.

The YAML is the single source of the silver column names, types and decodings. This module
checks it against the bronze file contracts and expands numbered columns; the result is
compiled into committed dbt files (cms_pipeline.mapping_sql: the staging models and the
mapping the silver macros read) and the mapping document is rendered from it. Pure
functions, no JVM.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from cms_pipeline.config import ConfigError, Settings, _explain, _Strict, read_yaml
from cms_pipeline.lake import FILE_ATTRIBUTE_COLUMNS, LINEAGE_COLUMNS

SilverType = Literal["string", "int", "bigint", "decimal", "date", "boolean"]
Decode = Literal["flag_1_2", "flag_y_0", "zero_pad_2", "zero_pad_3"]
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


class Lookup(_Strict):
    seed: str
    name: str


class ColumnMap(_Strict):
    source: str
    name: str
    type: SilverType = "string"
    decode: Decode | None = None
    lookup: Lookup | None = None
    chronic_condition: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> ColumnMap:
        if not _IDENT.match(self.name):
            raise ValueError(f"silver name '{self.name}' must be lower_snake_case")
        if self.decode in ("flag_1_2", "flag_y_0") and self.type != "boolean":
            raise ValueError(f"{self.source}: decode {self.decode} needs type boolean")
        return self


class Repeated(_Strict):
    source: str
    repeat: tuple[int, int]
    type: SilverType = "string"

    def expand(self) -> list[tuple[str, str]]:
        first, last = self.repeat
        return [(self.source.format(n=n), self.type) for n in range(first, last + 1)]


class UnpivotColumn(_Strict):
    name: str
    type: SilverType = "string"
    lookup: Lookup | None = None
    description: str = ""


class UnpivotItem(_Strict):
    values: dict[str, str]
    position: int | None = None
    repeat: tuple[int, int] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> UnpivotItem:
        if (self.position is None) == (self.repeat is None):
            raise ValueError("an unpivot item needs exactly one of `position` or `repeat`")
        return self

    def expand(self) -> list[tuple[int, dict[str, str]]]:
        if self.repeat is None:
            return [(self.position, dict(self.values))]
        first, last = self.repeat
        return [
            (n, {k: v.format(n=n) for k, v in self.values.items()}) for n in range(first, last + 1)
        ]


class Unpivot(_Strict):
    position: str
    columns: list[UnpivotColumn]
    items: list[UnpivotItem]


class TableMapping(_Strict):
    source: str
    model: str
    claim_type: str | None = None
    key: list[str]
    columns: list[ColumnMap]
    repeated: list[Repeated] = Field(default_factory=list)
    unpivots: dict[str, Unpivot] = Field(default_factory=dict)


def _staging_name(source_column: str) -> str:
    return source_column.lower()


def expand_table(mapping: TableMapping, source_columns: list[str]) -> dict:
    """The mapping as plain data for dbt: every numbered column spelled out.

    `source_columns` are the bronze columns (contract columns plus lineage and file
    attributes); anything the mapping names must be one of them.
    """
    problems: list[str] = []
    available = set(source_columns)
    staged: dict[str, str] = {}  # source column -> staging column name
    columns = []
    for col in mapping.columns:
        if col.source not in available:
            problems.append(f"columns: {col.source} is not a column of bronze.{mapping.source}")
        staged[col.source] = col.name
        columns.append(col.model_dump())
    repeated = []
    for rep in mapping.repeated:
        for source, typ in rep.expand():
            if source not in available:
                problems.append(f"repeated: {source} is not a column of bronze.{mapping.source}")
            staged[source] = _staging_name(source)
            repeated.append({"source": source, "name": _staging_name(source), "type": typ})
    for key in mapping.key:
        if key not in staged:
            problems.append(f"key: {key} must also be mapped under `columns`")
    names = [c["name"] for c in columns] + [r["name"] for r in repeated]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"silver names used twice: {dupes}")
    unpivots = {}
    for target, unpivot in mapping.unpivots.items():
        wanted = {c.name for c in unpivot.columns}
        rows = []
        for item in unpivot.items:
            for position, values in item.expand():
                if set(values) != wanted:
                    problems.append(
                        f"unpivots.{target}: item at position {position} gives "
                        f"{sorted(values)}, expected {sorted(wanted)}"
                    )
                missing = [v for v in values.values() if v not in staged]
                if missing:
                    problems.append(
                        f"unpivots.{target}: {missing} not mapped under `columns` or `repeated`"
                    )
                rows.append(
                    {"position": position, "values": {k: staged.get(v) for k, v in values.items()}}
                )
        positions = [r["position"] for r in rows]
        if len(set(positions)) != len(positions):
            problems.append(f"unpivots.{target}: positions repeat")
        unpivots[target] = {
            "position": unpivot.position,
            "columns": [c.model_dump() for c in unpivot.columns],
            "rows": rows,
        }
    if problems:
        raise ValueError("; ".join(problems))
    return {
        "source": mapping.source,
        "model": mapping.model,
        "claim_type": mapping.claim_type,
        "key": [staged[k] for k in mapping.key if k in staged],
        "key_source": list(mapping.key),
        "columns": columns,
        "repeated": repeated,
        "unpivots": unpivots,
    }


def bronze_columns(settings: Settings, table: str) -> list[str]:
    contract = next((c for c in settings.sources.values() if c.table == table), None)
    if contract is None:
        raise ConfigError(f"no source contract writes bronze.{table} (config/sources/*.yaml)")
    return contract.column_names + LINEAGE_COLUMNS + FILE_ATTRIBUTE_COLUMNS


def mapping_dir(settings: Settings) -> Path:
    return Path(settings.config_dir) / "mappings"


def load_mappings(settings: Settings) -> dict[str, dict]:
    """All mappings, keyed by bronze table, expanded for dbt. Errors name file and key."""
    result: dict[str, dict] = {}
    paths = sorted(mapping_dir(settings).glob("*.yaml"))
    if not paths:
        raise ConfigError(f"{mapping_dir(settings)}: no mapping files (*.yaml)")
    for path in paths:
        data = read_yaml(path)
        try:
            mapping = TableMapping(**data)
        except ValidationError as exc:
            raise _explain(path, exc) from exc
        except TypeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        if mapping.source in result:
            raise ConfigError(f"{path}: bronze.{mapping.source} is mapped twice")
        try:
            result[mapping.source] = expand_table(mapping, bronze_columns(settings, mapping.source))
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    return result
