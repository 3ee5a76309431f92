"""Model registry and catalogue on MLflow: one registered model per use case.

Default store: SQLite at METADATA/mlflow/mlflow.db with artefacts under
METADATA/mlflow/artifacts; set MLFLOW_TRACKING_URI to use a tracking server instead.
The champion is the version holding the `champion` alias; every promotion is appended
to the registered model's `champion_history` tag so that `rollback` can restore the
previous champion.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from cms_pipeline.config import Settings
from cms_pipeline.runtime import prepare_environment
from models_ml.schema import FEATURES_FILE

CHAMPION = "champion"
HISTORY_TAG = "champion_history"
EVALUATION_DIR = "evaluation"
# the training rows of a version's most important numeric inputs (models_ml.run_artifacts)
FEATURE_REFERENCE = "feature_reference.parquet"
MOJO_DIR = "mojo"
MODEL_DIR = "model"  # the version as an MLflow model (models_ml.pyfunc)
MOJO_FILE = "model.zip"
GENMODEL_JAR = "h2o-genmodel.jar"


class RegistryError(RuntimeError):
    """A registry request cannot be done; the message says why and what to do."""


def tracking_uri(settings: Settings) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    db = settings.metadata_path("mlflow", "mlflow.db").resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


def local_store(settings: Settings) -> Path | None:
    """The SQLite file of the tracking store, or None for a tracking server."""
    uri = tracking_uri(settings)
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def store_stamp(store: Path | None) -> tuple | None:
    """Changes whenever the SQLite store is written (its files' mtime and size): a check
    that costs microseconds instead of a query. None for a tracking server."""
    if store is None:
        return None
    stamp = []
    for path in (store, store.with_name(store.name + "-wal")):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        stamp.append((stat.st_mtime_ns, stat.st_size))
    return tuple(stamp)


def artifact_root(settings: Settings) -> str:
    return settings.metadata_path("mlflow", "artifacts").resolve().as_uri()


def client(settings: Settings):
    prepare_environment()  # MLflow telemetry off before import
    # MLflow (about 2 s to import) only here: this module's names and local reads serve the
    # dashboard, the catalogue and the model card without it
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(settings)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(settings: Settings, use_case: str) -> str:
    c = client(settings)
    exp = c.get_experiment_by_name(use_case)
    if exp is not None:
        return exp.experiment_id
    location = (
        None if os.environ.get("MLFLOW_TRACKING_URI") else f"{artifact_root(settings)}/{use_case}"
    )
    return c.create_experiment(use_case, artifact_location=location)


def register_version(settings: Settings, use_case: str, run_id: str, tags: dict[str, str]):
    """A new version of the use case's model from the run's `mojo/` artefacts."""
    c = client(settings)
    try:
        c.get_registered_model(use_case)
    except Exception:  # noqa: BLE001 - mlflow raises a generic RestException when missing
        c.create_registered_model(use_case, description=f"H2O AutoML models for {use_case}")
    run = c.get_run(run_id)
    # the MLflow model (models_ml.pyfunc) when the run logged one: `models:/` URIs load it
    logged = {f.path for f in c.list_artifacts(run_id)}
    source = f"{run.info.artifact_uri}/{MODEL_DIR if MODEL_DIR in logged else MOJO_DIR}"
    version = c.create_model_version(use_case, source=source, run_id=run_id, tags=tags)
    return version


def champion(settings: Settings, use_case: str):
    """The champion ModelVersion, or None."""
    c = client(settings)
    try:
        return c.get_model_version_by_alias(use_case, CHAMPION)
    except Exception:  # noqa: BLE001 - no model or no alias yet
        return None


def _history(c, use_case: str) -> list[str]:
    tags = c.get_registered_model(use_case).tags
    return json.loads(tags.get(HISTORY_TAG, "[]"))


def promote(settings: Settings, use_case: str, version: str | int, reason: str) -> dict:
    """Make `version` the champion (also used to force a manual promotion)."""
    c = client(settings)
    version = str(version)
    try:
        c.get_model_version(use_case, version)
    except Exception as exc:  # noqa: BLE001
        raise RegistryError(
            f"model '{use_case}' has no version {version}; see `cms-pipeline models show {use_case}`"
        ) from exc
    history = _history(c, use_case)
    previous = history[-1] if history else None
    history.append(version)
    c.set_registered_model_alias(use_case, CHAMPION, version)
    c.set_registered_model_tag(use_case, HISTORY_TAG, json.dumps(history))
    c.set_model_version_tag(use_case, version, "promoted_at", _now())
    c.set_model_version_tag(use_case, version, "promotion_reason", reason)
    return {"use_case": use_case, "champion": version, "previous": previous, "reason": reason}


def rollback(settings: Settings, use_case: str) -> dict:
    """Restore the champion before the current one."""
    c = client(settings)
    history = _history(c, use_case) if _exists(c, use_case) else []
    if len(history) < 2:
        raise RegistryError(
            f"model '{use_case}' has no earlier champion to roll back to (history: {history})"
        )
    current = history.pop()
    restored = history[-1]
    c.set_registered_model_alias(use_case, CHAMPION, restored)
    c.set_registered_model_tag(use_case, HISTORY_TAG, json.dumps(history))
    c.set_model_version_tag(use_case, current, "rolled_back_at", _now())
    return {"use_case": use_case, "champion": restored, "rolled_back": current}


def version_summary(c, version) -> dict:
    run = c.get_run(version.run_id) if version.run_id else None
    metrics = {k: v for k, v in (run.data.metrics if run else {}).items() if k.startswith("test_")}
    return {
        "version": str(version.version),
        "run_id": version.run_id,
        "created": _ts(version.creation_timestamp),
        "aliases": list(getattr(version, "aliases", []) or []),
        "metrics": metrics,
        "table": (run.data.tags.get("table") if run else None),
        "train_rows": (run.data.params.get("rows_train") if run else None),
        "test_rows": (run.data.params.get("rows_test") if run else None),
        "git_commit": (run.data.tags.get("git_commit") if run else None),
        "config_hash": (run.data.tags.get("config_hash") if run else None),
        "leader": (run.data.tags.get("leader_model_id") if run else None),
        "tags": dict(version.tags),
    }


def list_models(settings: Settings) -> list[dict]:
    """Every use case's registered model with its champion and latest version."""
    c = client(settings)
    rows = []
    for rm in c.search_registered_models():
        versions = c.search_model_versions(f"name='{rm.name}'")
        latest = max((int(v.version) for v in versions), default=None)
        champ = champion(settings, rm.name)
        rows.append(
            {
                "use_case": rm.name,
                "versions": len(versions),
                "latest": latest,
                "champion": str(champ.version) if champ else None,
                "champion_metrics": version_summary(c, champ)["metrics"] if champ else {},
            }
        )
    return sorted(rows, key=lambda r: r["use_case"])


def show_model(settings: Settings, use_case: str) -> dict:
    c = client(settings)
    if not _exists(c, use_case):
        raise RegistryError(
            f"no registered model '{use_case}'; train it: `cms-pipeline train {use_case}`"
        )
    versions = sorted(c.search_model_versions(f"name='{use_case}'"), key=lambda v: int(v.version))
    champ = champion(settings, use_case)
    return {
        "use_case": use_case,
        "champion": str(champ.version) if champ else None,
        "champion_history": _history(c, use_case),
        "versions": [
            version_summary(c, c.get_model_version(use_case, v.version)) for v in versions
        ],
    }


def download_version(settings: Settings, use_case: str, version, dest: Path) -> dict[str, Path]:
    """The MOJO, genmodel jar and feature list of a version, copied under `dest`."""
    c = client(settings)
    mv = c.get_model_version(use_case, str(version))
    target = dest / use_case / str(mv.version)
    if not (target / MOJO_DIR / MOJO_FILE).exists():
        target.mkdir(parents=True, exist_ok=True)
        c.download_artifacts(mv.run_id, MOJO_DIR, str(target))
    base = target / MOJO_DIR
    return {"mojo": base / MOJO_FILE, "jar": base / GENMODEL_JAR, "features": base / FEATURES_FILE}


def download_model(settings: Settings, use_case: str, version, dest: Path) -> Path | None:
    """The version's MLflow model folder (models_ml.pyfunc) copied under `dest`, or None
    for a version registered before versions were MLflow models."""
    c = client(settings)
    mv = c.get_model_version(use_case, str(version))
    if not mv.source.rstrip("/").endswith(f"/{MODEL_DIR}"):
        return None
    target = dest / use_case / str(mv.version)
    if not (target / MODEL_DIR / "MLmodel").exists():
        target.mkdir(parents=True, exist_ok=True)
        c.download_artifacts(mv.run_id, MODEL_DIR, str(target))
    return target / MODEL_DIR


def download_evaluation(
    settings: Settings, use_case: str, version, name: str, dest: Path
) -> Path | None:
    """The version's evaluation artefact `name` copied under `dest`, or None when the
    version has none (trained before it was written)."""
    c = client(settings)
    mv = c.get_model_version(use_case, str(version))
    target = dest / use_case / str(mv.version)
    path = target / EVALUATION_DIR / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            got = c.download_artifacts(mv.run_id, f"{EVALUATION_DIR}/{name}", str(path.parent))
        except Exception:  # noqa: BLE001 - MLflow raises several kinds for a missing file
            return None
        if Path(got) != path:
            Path(got).replace(path)
    return path


CARD_FILES = ("card.html", "card.json")  # models_ml.card, at the root of a run's artefacts


def download_card(settings: Settings, use_case: str, version, dest: Path) -> dict[str, Path]:
    """The version's model card (card.html and card.json) copied under `dest`."""
    c = client(settings)
    try:
        mv = c.get_model_version(use_case, str(version))
    except Exception as exc:  # noqa: BLE001
        raise RegistryError(
            f"model '{use_case}' has no version {version}; see `cms-pipeline models show {use_case}`"
        ) from exc
    target = dest / use_case / str(mv.version)
    target.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in CARD_FILES:
        try:
            paths[name.split(".")[1]] = Path(c.download_artifacts(mv.run_id, name, str(target)))
        except Exception as exc:  # noqa: BLE001 - MLflow raises several kinds for a missing file
            raise RegistryError(
                f"version {mv.version} of '{use_case}' has no {name} (trained before model "
                f"cards were written); retrain it: `cms-pipeline train {use_case}`"
            ) from exc
    return paths


def _exists(c, use_case: str) -> bool:
    try:
        c.get_registered_model(use_case)
        return True
    except Exception:  # noqa: BLE001
        return False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _ts(ms: int | None) -> str | None:
    return (
        None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
    )


def model_catalog(settings: Settings) -> list[dict]:
    """One entry per registered version for `cms-pipeline catalog`: metrics and the
    data it was trained on (table, rows, periods, recorded input versions)."""
    c = client(settings)
    entries = []
    for rm in c.search_registered_models():
        champ = champion(settings, rm.name)
        for v in sorted(c.search_model_versions(f"name='{rm.name}'"), key=lambda v: int(v.version)):
            run = c.get_run(v.run_id)
            params, tags = run.data.params, run.data.tags
            entries.append(
                {
                    "use_case": rm.name,
                    "version": str(v.version),
                    "is_champion": champ is not None and str(champ.version) == str(v.version),
                    "created": _ts(v.creation_timestamp),
                    "table": tags.get("table"),
                    "rows_train": params.get("rows_train"),
                    "rows_test": params.get("rows_test"),
                    "train_periods": params.get("train_periods"),
                    "test_periods": params.get("test_periods"),
                    "snapshot_sha256": tags.get("snapshot_sha256"),
                    "input_versions": {
                        k.removeprefix("lineage."): _json(val)
                        for k, val in tags.items()
                        if k.startswith("lineage.")
                    },
                    "metrics": {
                        k: val for k, val in run.data.metrics.items() if k.startswith("test_")
                    },
                }
            )
    return entries


def _json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text  # cut at the tag length limit
