"""Use cases: one YAML file in config/ml/ each, validated into a `UseCase`.

A new use case needs only a new file; nothing in code names a use case.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from cms_pipeline.config import ConfigError, Settings, _explain, _Strict, read_yaml

H2O_ALGOS = ["GLM", "GBM", "DRF", "XGBoost", "DeepLearning", "StackedEnsemble"]


class SplitConfig(_Strict):
    time_column: str
    test_periods: int = Field(1, ge=1, description="last N distinct values form the test set")
    group_column: str | None = Field(
        None, description="cross-validation folds keep each value's rows together (H2O fold_column)"
    )


class PopulationConfig(_Strict):
    """Who is trained on and who is scored, from the one feature table (one definition)."""

    training_flag: str = Field(description="boolean column: true where the label is known")
    prediction_date: str = Field(description="date column: the day each prediction is made")
    label_horizon_days: int = Field(
        ge=0, description="the label looks this far past prediction_date (sets the train-test gap)"
    )
    scoring_window_days: int = Field(
        ge=1, description="score rows with as_of - window < prediction_date <= as_of"
    )


class AutoMLConfig(_Strict):
    max_models: int = Field(ge=1)
    max_runtime_secs: int = Field(0, ge=0, description="safety cap; 0 = none")
    seed: int = 42
    nfolds: int = Field(5, ge=0)
    exclude_algos: list[Literal[*H2O_ALGOS]] = Field(default_factory=list)  # type: ignore[valid-type]
    sort_metric: Literal["AUC", "AUCPR", "logloss"] = "AUC"


class PromotionConfig(_Strict):
    metric: Literal["auc", "aucpr", "logloss"] = "auc"
    margin: float = Field(0.0, ge=0)

    @property
    def higher_is_better(self) -> bool:
        return self.metric != "logloss"


class BootstrapConfig(_Strict):
    """The held-out rows resampled with replacement: the model card's metric intervals,
    and the paired interval of a challenger's gain that must lie above 0 to promote it."""

    resamples: int = Field(1000, ge=100, description="replicates of the test rows")
    seed: int = Field(0, description="seed of the replicates: a retraining repeats exactly")
    level: float = Field(0.95, gt=0.5, lt=1, description="level of every interval")


class UseCase(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    table: str
    target: str
    id_columns: list[str]
    exclude_columns: list[str] = Field(default_factory=list)
    categorical_columns: list[str] = Field(default_factory=list)
    split: SplitConfig
    population: PopulationConfig
    automl: AutoMLConfig
    promotion: PromotionConfig = PromotionConfig()
    bootstrap: BootstrapConfig = BootstrapConfig()

    @model_validator(mode="after")
    def _target_not_excluded(self) -> UseCase:
        clash = {self.target} & set(self.id_columns + self.exclude_columns)
        if clash:
            raise ValueError(f"target {sorted(clash)} is also listed as id or excluded column")
        return self

    @property
    def non_features(self) -> set[str]:
        """Columns that must never reach the model: ids, label, split, population, excluded."""
        return {
            self.target,
            self.split.time_column,
            self.population.training_flag,
            self.population.prediction_date,
            *([self.split.group_column] if self.split.group_column else []),
            *self.id_columns,
            *self.exclude_columns,
        }

    def feature_columns(self, columns: list[str]) -> list[str]:
        """The table's columns minus everything that must not reach the model, in order."""
        return [c for c in columns if c not in self.non_features]

    @property
    def predictions_table(self) -> str:
        """Every scoring run's rows (appended; `run_id` tells runs apart)."""
        return f"gold.predictions_{self.name}"

    @property
    def latest_predictions_table(self) -> str:
        """The latest scoring run's rows."""
        return f"gold.predictions_{self.name}_latest"

    def config_hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def use_case_dir(settings: Settings) -> Path:
    return Path(settings.config_dir) / "ml"


def load_use_case(settings: Settings, name: str) -> UseCase:
    path = use_case_dir(settings) / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(list_use_cases(settings)) or "none"
        raise ConfigError(f"{path}: no such use case '{name}' (known: {known})")
    return parse_use_case(path)


def parse_use_case(path: Path) -> UseCase:
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    if data["name"] != path.stem:
        raise ConfigError(f"{path}: name '{data['name']}' must equal the file name '{path.stem}'")
    try:
        return UseCase(**data)
    except ValidationError as exc:
        raise _explain(path, exc, what="use case") from exc


def list_use_cases(settings: Settings) -> list[str]:
    return sorted(p.stem for p in use_case_dir(settings).glob("*.yaml"))
