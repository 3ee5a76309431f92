"""Champion MOJOs loaded for scoring, cached on local disk and in this process's JVM."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from cms_pipeline.config import Settings
from models_ml import registry
from models_ml.mojo import MojoScorer
from models_ml.schema import Feature, FeatureSpec

REASON_CHARS = 300  # a Java stack message can be long; the readiness report stays readable


@dataclass
class LoadedModel:
    use_case: str
    version: str
    scorer: MojoScorer
    features: list[Feature]
    id_columns: list[str]
    metrics: dict[str, float]
    mojo: Path  # the version's files, in the local cache (batch scoring ships them)
    jar: Path


def cache_dir(settings: Settings) -> Path:
    return settings.metadata_path("ml", "_serving")


def load_version(settings: Settings, use_case: str, version: str | None = None) -> LoadedModel:
    """Load `version`, or the champion when None, into the process's JVM.

    A version that fails to load leaves no cached copy behind, so the next attempt
    downloads it again (a repaired artefact is picked up)."""
    if version is None:
        champ = registry.champion(settings, use_case)
        if champ is None:
            raise registry.RegistryError(
                f"'{use_case}' has no champion yet; train it (`cms-pipeline train {use_case}`) "
                f"or promote a version (`cms-pipeline models promote {use_case} VERSION`)"
            )
        version = str(champ.version)
    try:
        return _load(settings, use_case, str(version))
    except BaseException:
        shutil.rmtree(cache_dir(settings) / use_case / str(version), ignore_errors=True)
        raise


def _load(settings: Settings, use_case: str, version: str) -> LoadedModel:
    """Through MLflow (the version's MLflow model, models_ml.pyfunc), or from the MOJO
    artefacts of a version registered before versions were MLflow models."""
    model_dir = registry.download_model(settings, use_case, version, cache_dir(settings))
    if model_dir is not None:
        # inside: models_ml.pyfunc imports MLflow (about 2 s), loaded with the first
        # version, not when the REST API or a scoring module imports this one
        from models_ml import pyfunc

        wrapped = pyfunc.load(model_dir)
        scorer = wrapped.scorer
        paths = {"mojo": wrapped.mojo, "jar": wrapped.jar, "features": wrapped.features_file}
    else:
        paths = registry.download_version(settings, use_case, version, cache_dir(settings))
        for kind in ("mojo", "jar", "features"):
            if not paths[kind].is_file():
                raise FileNotFoundError(f"{paths[kind].name} missing from the version's artefacts")
        scorer = MojoScorer(paths["mojo"], paths["jar"])
    spec = FeatureSpec.read(paths["features"])
    c = registry.client(settings)
    summary = registry.version_summary(c, c.get_model_version(use_case, version))
    return LoadedModel(
        use_case=use_case,
        version=version,
        scorer=scorer,
        features=scorer.features,
        id_columns=spec.id_columns,
        metrics=summary["metrics"],
        mojo=paths["mojo"],
        jar=paths["jar"],
    )


def earlier_champions(settings: Settings, use_case: str, failed: str) -> list[str]:
    """The versions that were champion before `failed`, most recent first: what to serve
    when the champion cannot be loaded (a version never promoted is never served)."""
    c = registry.client(settings)
    history = json.loads(c.get_registered_model(use_case).tags.get(registry.HISTORY_TAG, "[]"))
    return [v for v in dict.fromkeys(reversed(history)) if v != failed]


def why(exc: BaseException) -> str:
    """One line naming what failed to load, for logs and /readyz."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    name = type(exc).__name__
    return (text if text.startswith(name) else f"{name}: {text}")[:REASON_CHARS]
