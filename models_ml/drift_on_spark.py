"""Drift of a scoring run, counted by Spark: its scores against the previous run and the
version's held-out predictions, its most important inputs against the version's training
rows. The driver gets bin counts only; the PSI itself is models_ml.monitoring's."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

from cms_pipeline.config import Settings
from models_ml import registry
from models_ml.monitoring import (
    BINS,
    Reference,
    compare_counts,
    has_values,
    reference_of,
    shares,
)
from models_ml.predictions_store import history_table
from models_ml.serving import cache_dir
from models_ml.usecase import UseCase

HELD_OUT = "test_predictions.parquet"  # written by models_ml.run_artifacts


def psi_on_spark(frame, comparisons: list[tuple[str, Reference, str]]) -> list[dict | None]:
    """monitoring.compare of each (column, reference, name) on `frame`, every column binned
    and counted by Spark in one pass over the frame (the population is computed once, not
    once per feature); None for a column without a value to bin."""
    counts = bin_counts_on_spark(frame, [(column, ref.edges) for column, ref, _ in comparisons])
    return [
        compare_counts(ref, found, name) if found.sum() else None
        for (_, ref, name), found in zip(comparisons, counts, strict=True)
    ]


def reference_on_spark(frame, column: str) -> Reference | None:
    """monitoring.reference_of `frame[column]`, its deciles and counts computed by Spark
    (exact percentiles, interpolated as numpy's); None without a value."""
    value = F.col(column).cast("double")
    finite = frame.select(value.alias("v")).where(_finite(F.col("v")))
    quantiles = [float(q) for q in np.linspace(0, 1, BINS + 1)[1:-1]]
    deciles, rows = finite.agg(F.percentile("v", F.lit(quantiles)), F.count("v")).first()
    if not rows:
        return None
    edges = np.unique(np.asarray(deciles, dtype=float))
    [counts] = bin_counts_on_spark(frame, [(column, edges)])
    return Reference(edges, shares(counts), int(rows))


def _finite(value):
    return value.isNotNull() & ~F.isnan(value) & (F.abs(value) != float("inf"))


def bin_counts_on_spark(frame, columns: list[tuple[str, np.ndarray]]) -> list[np.ndarray]:
    """monitoring.bin_counts of each (column, edges) of `frame`, counted by Spark in one
    job: each row gives one (column index, bin) pair per finite value, grouped and counted."""
    if not columns:
        return []
    pairs = []
    for index, (column, edges) in enumerate(columns):
        value = F.col(column).cast("double")
        # bin i: edges[i-1] < v <= edges[i] (monitoring._bins), as the number of edges below v
        position = sum((F.when(value > float(e), 1).otherwise(0) for e in edges), F.lit(0))
        pairs.append(F.struct(F.lit(index).alias("k"), F.when(_finite(value), position).alias("b")))
    found = (
        frame.select(F.explode(F.array(*pairs)).alias("p"))
        .where(F.col("p.b").isNotNull())
        .groupBy(F.col("p.k").alias("k"), F.col("p.b").alias("b"))
        .count()
        .collect()
    )
    counts = [np.zeros(len(edges) + 1, dtype=np.int64) for _, edges in columns]
    for row in found:
        counts[row["k"]][row["b"]] = row["count"]
    return counts


def score_references(settings: Settings, spark, uc: UseCase, version: str) -> dict:
    """What this run's scores are compared with (models_ml.monitoring): the previous run
    in the history, and the held-out predictions the version was evaluated on at training
    (the model's own reference distribution). A reference that does not exist is left out."""
    references = {}
    history = history_table(uc.predictions_table)
    if spark.catalog.tableExists(history):
        runs = spark.table(history)
        previous = runs.agg(F.max("run_id")).first()[0]
        if previous is not None:  # binned where it lies: the driver gets 10 counts
            ref = reference_on_spark(runs.filter(F.col("run_id") == previous), "score")
            if ref is not None:
                references[f"previous run {previous}"] = ref
    held_out = registry.download_evaluation(
        settings, uc.name, version, HELD_OUT, cache_dir(settings)
    )
    if held_out is not None:  # the test rows of training: a file of a few thousand scores
        scores = pd.read_parquet(held_out)["p1"]
        references[f"v{version} held-out predictions"] = reference_of(scores)
    return references


def feature_references(settings: Settings, uc: UseCase, version: str) -> dict:
    """{feature: Reference of its values in the version's training rows} for the most
    important numeric inputs with a value (models_ml.run_artifacts); empty for a version trained
    before they were kept."""
    path = registry.download_evaluation(
        settings, uc.name, version, registry.FEATURE_REFERENCE, cache_dir(settings)
    )
    if path is None:
        return {}
    features = pd.read_parquet(path).items()
    return {name: reference_of(values) for name, values in features if has_values(values)}
