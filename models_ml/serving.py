"""Champion MOJOs loaded for scoring, cached on local disk and in this process's JVM."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cms_pipeline.config import Settings
from models_ml import registry
from models_ml.mojo import MojoScorer
from models_ml.schema import Feature


@dataclass
class LoadedModel:
    use_case: str
    version: str
    scorer: MojoScorer
    features: list[Feature]
    id_columns: list[str]
    metrics: dict[str, float]


def cache_dir(settings: Settings) -> Path:
    return settings.metadata_path("ml", "_serving")


def load_version(settings: Settings, use_case: str, version: str | None = None) -> LoadedModel:
    """Load `version`, or the champion when None, into the process's JVM."""
    if version is None:
        champ = registry.champion(settings, use_case)
        if champ is None:
            raise registry.RegistryError(
                f"'{use_case}' has no champion yet; train it (`cms-pipeline train {use_case}`) "
                f"or promote a version (`cms-pipeline models promote {use_case} VERSION`)"
            )
        version = str(champ.version)
    paths = registry.download_version(settings, use_case, version, cache_dir(settings))
    spec = json.loads(paths["features"].read_text())
    scorer = MojoScorer(paths["mojo"], paths["jar"])
    c = registry.client(settings)
    summary = registry.version_summary(c, c.get_model_version(use_case, version))
    return LoadedModel(
        use_case=use_case,
        version=str(version),
        scorer=scorer,
        features=scorer.features,
        id_columns=spec.get("id_columns", []),
        metrics=summary["metrics"],
    )
