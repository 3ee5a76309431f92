"""Each model version as an MLflow model: a pyfunc that wraps the version's MOJO.

`mlflow.pyfunc.load_model("models:/<use case>@champion")` and `mlflow models serve` then
work as they do for any MLflow model. The signature comes from the model's own features
(models_ml.schema.Feature: numeric -> double, categorical -> string; every input may be
null, a missing value, as H2O scores it), so callers see the columns the MOJO reads.
`predict` returns the score (P(class 1)) and the label at the model's threshold.

The model is logged as code (models_ml/pyfunc_model.py, MLflow's "models from code"), not
as a pickle, and that code imports this module: loading needs this project installed (as
the REST API, batch scoring and the tests have it). The model holds no copy of our package
(MLflow's `code_paths` would put that copy ahead of the installed one in any process
loading it).
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pandas as pd

from cms_pipeline.runtime import prepare_environment
from models_ml import registry
from models_ml.mojo import MojoScorer
from models_ml.schema import FEATURES_FILE, Feature

prepare_environment()  # MLflow's telemetry off before MLflow is imported
import mlflow.pyfunc  # noqa: E402
from mlflow.models import ModelSignature  # noqa: E402
from mlflow.pyfunc import PythonModel  # noqa: E402
from mlflow.types import ColSpec, Schema  # noqa: E402

MODEL_DIR = registry.MODEL_DIR  # the MLflow model's folder in a run's artefacts
EXAMPLE_ROWS = 5


class MojoModel(PythonModel):
    """A binomial MOJO as an MLflow python model."""

    def load_context(self, context) -> None:
        self.mojo = Path(context.artifacts["mojo"])
        self.jar = Path(context.artifacts["genmodel"])
        self.features_file = Path(context.artifacts["features"])
        self.scorer = MojoScorer(self.mojo, self.jar)

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        scores = self.scorer.score_frame(frame)
        return pd.DataFrame({"score": scores, "label": self.scorer.labels(scores)})


def signature(features: list[Feature]):
    """Inputs: the model's features, each optional; outputs: score and label."""
    inputs = Schema(
        [
            ColSpec("double" if f.type == "numeric" else "string", f.name, required=False)
            for f in features
        ]
    )
    outputs = Schema([ColSpec("double", "score"), ColSpec("long", "label")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def as_inputs(rows: pd.DataFrame, features: list[Feature]) -> pd.DataFrame:
    """`rows` as the signature types them: numbers as floats (Spark decimals included),
    levels as text, missing as None."""
    out = {}
    for f in features:
        values = rows[f.name]
        if f.type == "numeric":
            out[f.name] = pd.to_numeric(values, errors="coerce").astype("float64")
        else:
            out[f.name] = [None if pd.isna(v) else str(v) for v in values]
    return pd.DataFrame(out)


def save(path: Path, mojo_dir: Path, features: list[Feature], rows: pd.DataFrame) -> Path:
    """Write the MLflow model of the MOJO in `mojo_dir` (models_ml.run_artifacts' layout: MOJO,
    genmodel jar, features.json) to `path`, a folder that must not exist; `rows` give the
    input example."""
    mlflow.pyfunc.save_model(
        path=str(path),
        python_model=str(Path(__file__).with_name("pyfunc_model.py")),  # code, not a pickle
        artifacts={
            "mojo": str(mojo_dir / registry.MOJO_FILE),
            "genmodel": str(mojo_dir / registry.GENMODEL_JAR),
            "features": str(mojo_dir / FEATURES_FILE),
        },
        signature=signature(features),
        input_example=as_inputs(rows.head(EXAMPLE_ROWS), features),
        pip_requirements=_requirements(),
    )
    return path


def load(path: Path) -> MojoModel:
    """The python model of the MLflow model at `path` (loaded by MLflow, as any MLflow
    model is), its MOJO scorer ready."""
    return mlflow.pyfunc.load_model(str(path)).unwrap_python_model()


def _requirements() -> list[str]:
    """What a fresh environment needs to load the model (besides this project)."""
    return [f"{name}=={version(name)}" for name in ("mlflow", "jpype1", "pandas", "numpy")]
