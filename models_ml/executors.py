"""Scoring on Spark's executors: each partition of the scoring population is scored where
it lies, by a MOJO scorer that each executor's Python worker loads once and keeps.

The MOJO and h2o-genmodel reach the executors through `SparkContext.addFile`, which ships
a file to every node of a cluster (and copies it once in local mode). Spark refuses a
second file of the same name from another path, and every version's MOJO has the same
name, so each is shipped as a copy named by its content hash: the same bytes always go
under one name, other bytes under another.

Python workers are reused between tasks (`spark.python.worker.reuse`, on by default), so
a worker starts its JVM (JPype, models_ml.mojo) and loads a MOJO once for all the
partitions it scores. Executors need this project installed, as the driver has it.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
from pyspark import SparkFiles

from models_ml.mojo import MojoScorer

_SCORERS: dict[tuple[str, str], MojoScorer] = {}  # per Python worker: (mojo, jar) -> scorer


def ship(spark, path: Path, shipped: Path) -> str:
    """Copy `path` into the folder `shipped` under a name holding its content hash, add it
    to the Spark context's files (once) and return that name."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    name = f"{path.stem}-{digest}{path.suffix}"
    copy = shipped / name
    if not copy.exists():
        shipped.mkdir(parents=True, exist_ok=True)
        partial = copy.with_suffix(copy.suffix + ".partial")
        shutil.copyfile(path, partial)
        partial.replace(copy)
    sc = spark.sparkContext
    if name not in _added(sc):
        sc.addFile(str(copy))
    return name


def _added(sc) -> set[str]:
    """The names of the files already added to the context (addFile keeps them by URI)."""
    files = sc._jsc.sc().listFiles()
    return {str(files.apply(i)).rsplit("/", 1)[-1] for i in range(files.size())}


def executor_scorer(mojo_name: str, jar_name: str) -> MojoScorer:
    """This worker's scorer of the shipped MOJO, loaded on first use."""
    key = (mojo_name, jar_name)
    if key not in _SCORERS:
        _SCORERS[key] = MojoScorer(SparkFiles.get(mojo_name), SparkFiles.get(jar_name))
    return _SCORERS[key]


def partition_scorer(
    mojo_name: str, jar_name: str, score_batch: Callable[[pd.DataFrame, MojoScorer], pd.DataFrame]
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function `DataFrame.mapInPandas` runs on each partition: every Arrow batch of
    rows through `score_batch(rows, scorer)` with this worker's scorer."""

    def score_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        scorer = executor_scorer(mojo_name, jar_name)
        for rows in batches:
            yield score_batch(rows, scorer)

    return score_partition
