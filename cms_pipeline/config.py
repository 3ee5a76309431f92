"""Typed configuration, read and validated once from `config/`.

`load_settings()` returns one `Settings` object: the chosen profile of `pipeline.yaml`
plus the file contracts of `sources/*.yaml`. A bad file names the file, the key and
what was expected.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"
ENV_VAR = "CMS_PIPELINE_ENV"
LAKE_ENV_VAR = "CMS_PIPELINE_LAKE"

LogicalType = Literal["id", "string", "date", "integer", "decimal"]
SchemaPolicy = Literal["reject", "quarantine", "evolve"]


class ConfigError(ValueError):
    """A configuration file is missing or invalid; the message says where and what."""


class _Strict(BaseModel):
    """Base of every configuration model: unknown keys are errors, values immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    name: str
    type: LogicalType = "string"
    nullable: bool = True
    domain: list[str] | None = None
    pattern: str | None = None
    repeat: tuple[int, int] | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    def expand(self) -> list[ColumnSpec]:
        """`NAME_{n}` with `repeat: [1, 10]` becomes NAME_1 .. NAME_10."""
        if self.repeat is None:
            return [self]
        first, last = self.repeat
        return [
            self.model_copy(update={"name": self.name.format(n=n), "repeat": None})
            for n in range(first, last + 1)
        ]


class Expectations(_Strict):
    unique_keys: bool = False
    min_rows: int | None = None
    max_rows: int | None = None


class SourceContract(_Strict):
    """What one kind of CMS file must look like, and what to do when it does not."""

    name: str
    table: str
    file_pattern: str
    format: Literal["csv"] = "csv"
    delimiter: str = ","
    encoding: str = "utf-8"
    on_schema_change: SchemaPolicy = "reject"
    keys: list[str] = Field(default_factory=list)
    expectations: Expectations = Expectations()
    columns: list[ColumnSpec]

    @field_validator("columns")
    @classmethod
    def _expand_repeats(cls, cols: list[ColumnSpec]) -> list[ColumnSpec]:
        expanded = [c for col in cols for c in col.expand()]
        names = [c.name for c in expanded]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate column names: {dupes}")
        return expanded

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.file_pattern)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def match(self, file_name: str) -> dict[str, str] | None:
        """Attributes (sample, year, part, ext) from a file name, or None if not ours."""
        m = self.regex.search(file_name)
        return None if m is None else {k: v for k, v in m.groupdict().items() if v is not None}


class IngestSettings(_Strict):
    batch_rows: int = 65536
    target_file_rows: int = 1_000_000
    parallel_tables: int = Field(default=2, ge=1)
    # A landing file changed less than this long ago is waited for until it has been still
    # that long; one that changes meanwhile is being copied in and is read next run.
    # Copies write continuously (gaps of milliseconds), so 2 s of stillness means done.
    settle_seconds: float = Field(default=2.0, ge=0)


class SparkSettings(_Strict):
    master: str = "local[2]"
    app_name: str = "cms-pipeline"
    native_delta: bool = False
    quick_jit: bool = False  # the JIT's quick tier only: faster on small data (spark.py)
    java_options: str = ""  # more flags for the JVMs of the driver and executors
    conf: dict[str, str] = Field(default_factory=dict)


class DbtSettings(_Strict):
    target: str = "local"  # local: session mode on the pipeline's SparkSession; cluster: thrift
    thrift_host: str = "localhost"  # Spark Thrift Server of the `cluster` target
    thrift_port: int = 10000
    thrift_user: str = "cms"
    threads: int = 4  # dbt models built at once (session mode: on the one SparkSession)


class LeaseSettings(_Strict):
    """The lake's writer lease (cms_pipeline/lease.py)."""

    wait_seconds: float = Field(default=300.0, ge=0)  # a second writer waits, then exits
    ttl_seconds: float = Field(default=120.0, gt=0)  # unrenewed this long: its holder is dead


class Profile(_Strict):
    landing: str
    lake: str
    metadata: str
    ingest: IngestSettings = IngestSettings()
    spark: SparkSettings = SparkSettings()
    dbt: DbtSettings = DbtSettings()
    lease: LeaseSettings = LeaseSettings()


class Settings(_Strict):
    """Everything the pipeline needs to know, resolved for one profile."""

    profile_name: str
    landing: str
    lake: str
    metadata: str
    ingest: IngestSettings
    spark: SparkSettings
    dbt: DbtSettings
    lease: LeaseSettings = LeaseSettings()
    sources: dict[str, SourceContract]
    config_dir: str

    def contract_for(self, file_name: str) -> tuple[SourceContract, dict[str, str]] | None:
        for contract in self.sources.values():
            attrs = contract.match(file_name)
            if attrs is not None:
                return contract, attrs
        return None

    def lake_path(self, *parts: str) -> str:
        return "/".join([self.lake.rstrip("/"), *parts])

    def metadata_path(self, *parts: str) -> Path:
        return Path(self.metadata, *parts)


def read_yaml(path: Path) -> dict:
    """A YAML file's top-level mapping; ConfigError names the file otherwise."""
    if not path.exists():
        raise ConfigError(f"{path}: file not found")
    try:
        # libyaml's loader when present: every command reads every config file at start
        data = (
            yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        )
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _explain(
    path: Path, exc: ValidationError, prefix: str = "", what: str = "configuration"
) -> ConfigError:
    lines = [f"{path}: invalid {what}"]
    for err in exc.errors():
        key = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        lines.append(f"  {key}: {err['msg']}")
    return ConfigError("\n".join(lines))


_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def _expand_env(value, path: Path, key: str = ""):
    """`${NAME}` and `${NAME:-default}` in string values, from the environment: a
    cluster's endpoints are deployment facts, set where the pipeline runs."""
    if isinstance(value, dict):
        return {k: _expand_env(v, path, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, path, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def _sub(m: re.Match) -> str:
        found = os.environ.get(m["name"])
        if found is None and m["default"] is None:
            raise ConfigError(
                f"{path}: {key}: environment variable {m['name']} is not set; "
                f"set it or write ${{{m['name']}:-default}}"
            )
        return found if found is not None else m["default"]

    return _ENV_REF.sub(_sub, value)


def _resolve(location: str) -> str:
    """Relative local paths are taken from the project root; URIs are kept as they are."""
    if "://" in location or Path(location).is_absolute():
        return location
    return str((PROJECT_ROOT / location).resolve())


def load_sources(config_dir: Path) -> dict[str, SourceContract]:
    contracts: dict[str, SourceContract] = {}
    for path in sorted((config_dir / "sources").glob("*.yaml")):
        data = read_yaml(path)
        defaults = data.get("defaults", {})
        for name, spec in (data.get("sources") or {}).items():
            try:
                contracts[name] = SourceContract(name=name, **{**defaults, **spec})
            except (ValidationError, TypeError) as exc:
                if isinstance(exc, ValidationError):
                    raise _explain(path, exc, prefix=f"sources.{name}") from exc
                raise ConfigError(f"{path}: sources.{name}: {exc}") from exc
    if not contracts:
        raise ConfigError(f"{config_dir / 'sources'}: no source contracts found (*.yaml)")
    return contracts


def load_settings(
    config_dir: Path | str | None = None,
    profile: str | None = None,
    lake: str | None = None,
) -> Settings:
    """Read `pipeline.yaml` and the contracts; `lake` (or $CMS_PIPELINE_LAKE) overrides.
    `${NAME:-default}` in the chosen profile is taken from the environment."""
    config_dir = Path(config_dir or os.environ.get("CMS_PIPELINE_CONFIG", CONFIG_DIR))
    path = config_dir / "pipeline.yaml"
    data = read_yaml(path)
    profiles = data.get("profiles") or {}
    name = profile or os.environ.get(ENV_VAR) or data.get("default_profile", "local")
    if name not in profiles:
        raise ConfigError(
            f"{path}: profile '{name}' (from ${ENV_VAR} or default_profile) not found; "
            f"expected one of {sorted(profiles)}"
        )
    try:
        prof = Profile(**_expand_env(profiles[name], path, f"profiles.{name}"))
    except ValidationError as exc:
        raise _explain(path, exc, prefix=f"profiles.{name}") from exc
    lake_override = lake or os.environ.get(LAKE_ENV_VAR)
    lake_uri = _resolve(lake_override or prof.lake)
    metadata = _resolve(prof.metadata)
    if (
        lake_override
        and prof.metadata.startswith(prof.lake.rstrip("/") + "/")
        and "://" not in lake_uri
    ):
        # metadata lives inside the lake by default: follow the lake when it is moved
        metadata = str(Path(lake_uri) / prof.metadata[len(prof.lake.rstrip("/")) + 1 :])
    return Settings(
        profile_name=name,
        landing=_resolve(prof.landing),
        lake=lake_uri,
        metadata=metadata,
        ingest=prof.ingest,
        spark=prof.spark,
        dbt=prof.dbt,
        lease=prof.lease,
        sources=load_sources(config_dir),
        config_dir=str(config_dir),
    )
