"""MOJO scoring in this process: one JVM (JPype) holding h2o-genmodel, never restarted.

Rows are encoded in numpy exactly as h2o-genmodel's EasyPredictModelWrapper does
(categorical level -> index in the training domain, unknown level or missing -> NaN)
and handed to `GenModel.score0`, which is what the wrapper calls: same scores, without
building a Java map per row.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from models_ml.schema import Feature

_JVM_LOCK = threading.Lock()
JVM_MAX_HEAP = "-Xmx1g"


def start_jvm(genmodel_jar: str | Path) -> None:
    """Start the process's JVM once with h2o-genmodel on the classpath.

    JPype cannot restart a JVM or change its classpath: later calls with another jar of
    the same H2O version are fine (the classes are identical); the first jar wins."""
    import jpype

    with _JVM_LOCK:
        if jpype.isJVMStarted():
            return
        from cms_pipeline.runtime import prepare_environment

        prepare_environment()
        jpype.startJVM(JVM_MAX_HEAP, classpath=[str(genmodel_jar)], convertStrings=False)


class MojoScorer:
    """A binomial MOJO loaded once; scores pandas frames or column dicts."""

    def __init__(self, mojo_path: str | Path, genmodel_jar: str | Path):
        start_jvm(genmodel_jar)
        import jpype

        self.path = str(mojo_path)
        self._model = jpype.JClass("hex.genmodel.MojoModel").load(self.path)
        n_features = int(self._model.getNumCols())
        names = [str(n) for n in self._model.getNames()]
        self.features: list[Feature] = []
        self._level_index: list[dict[str, int] | None] = []
        for j in range(n_features):
            domain = self._model.getDomainValues(j)
            levels = None if domain is None else [str(v) for v in domain]
            self.features.append(
                Feature(
                    name=names[j],
                    type="numeric" if levels is None else "categorical",
                    levels=levels,
                )
            )
            self._level_index.append(
                None if levels is None else {v: i for i, v in enumerate(levels)}
            )
        if int(self._model.getNumResponseClasses()) != 2:
            raise ValueError(f"{self.path}: not a binomial model; only binary use cases are served")
        self.threshold = float(self._model._defaultThreshold)
        self.model_id = str(self._model.getUUID())
        self._jdouble_array = jpype.JArray(jpype.JDouble)
        self._preds_size = int(self._model.getPredsSize())
        self._lock = threading.Lock()  # score0 writes into a shared preds buffer

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def encode(self, columns: dict[str, object], n_rows: int) -> np.ndarray:
        """Rows x features matrix of doubles in the model's column order."""
        x = np.full((n_rows, len(self.features)), np.nan)
        for j, (feat, index) in enumerate(zip(self.features, self._level_index, strict=True)):
            if feat.name not in columns:
                raise KeyError(f"feature '{feat.name}' missing from the data to score")
            values = columns[feat.name]
            if index is None:
                x[:, j] = np.asarray(
                    [np.nan if v is None else v for v in values]
                    if isinstance(values, list)
                    else values,
                    dtype=float,
                )
            else:
                x[:, j] = [index.get(_level(v), np.nan) for v in values]
        return x

    def score_matrix(self, x: np.ndarray) -> np.ndarray:
        """P(class 1) for each encoded row."""
        out = np.empty(len(x))
        make = self._jdouble_array
        with self._lock:
            preds = make(self._preds_size)
            model = self._model
            for i, row in enumerate(x):
                model.score0(make(row), preds)
                out[i] = preds[2]
        return out

    def score_columns(self, columns: dict[str, object], n_rows: int) -> np.ndarray:
        return self.score_matrix(self.encode(columns, n_rows))

    def score_frame(self, frame) -> np.ndarray:
        """Score a pandas DataFrame holding (at least) the model's features."""
        columns = {}
        for feat in self.features:
            col = frame[feat.name]
            # nullable ints/decimals -> float64 with NaN for missing
            columns[feat.name] = (
                col.astype("float64").to_numpy() if feat.type == "numeric" else col.tolist()
            )
        return self.score_columns(columns, len(frame))

    def labels(self, scores: np.ndarray) -> np.ndarray:
        return (scores >= self.threshold).astype(int)


def _level(value) -> str | None:
    """A categorical value as H2O's domain spells it (ints without '.0')."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)
