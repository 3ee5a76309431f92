"""Training data: an exact Parquet snapshot of a gold feature table, split in time.

The feature table holds training rows and the scoring population (one definition, see
`population` in the use case's YAML); training reads the rows whose label is known. They
are written once under METADATA/ml/<use_case>/<run_id>/{table,train,test}/; H2O imports
the train and test Parquet folders directly (never through pandas), so the run can be
reproduced from the files it logged.

Leak-free split: the last period tests; earlier rows train only when their label window
(prediction_date + label_horizon_days) ends by the first prediction of the test period
(the gap). Cross-validation folds are a hash of the group column (the beneficiary), so
one person's rows never sit on both sides of a fold.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from models_ml.usecase import UseCase

# PySpark (about 0.3 s to import) is imported in the functions that build a query: the CLI's
# model commands (FeatureTableError), the card and the tracking (Snapshot) import this
# module without Spark.

NUMERIC_SPARK_TYPES = (
    "tinyint",
    "smallint",
    "int",
    "bigint",
    "float",
    "double",
    "decimal",
    "boolean",
)
PARQUET_PATTERN = r".*\.parquet$"
FOLD_COLUMN = "cv_fold"  # written into the train Parquet, given to H2O as fold_column


class FeatureTableError(ValueError):
    """The feature table does not fit its use case; the message says what to change."""


@dataclass
class Snapshot:
    table: str
    directory: str
    train_path: str
    test_path: str
    features: list[str]
    categorical: list[str]
    train_periods: list
    test_periods: list
    rows_table: int
    rows_train: int
    rows_test: int
    rows_without_period: int
    rows_unlabelled: int  # the scoring population, never trained on
    rows_gap: int  # earlier rows left out: their label window reaches the test period
    test_start: str | None
    fold_column: str | None
    positives_train: int
    positives_test: int
    files_sha256: str
    spark_types: dict[str, str] = field(default_factory=dict)

    def lineage(self) -> dict:
        out = asdict(self)
        out.pop("spark_types")
        return out


def feature_types(use_case: UseCase, spark_types: dict[str, str]) -> tuple[list[str], list[str]]:
    """(features, categorical features) from the table's column types; pure."""
    pop = use_case.population
    needed = [
        use_case.target,
        use_case.split.time_column,
        pop.training_flag,
        pop.prediction_date,
        *use_case.id_columns,
        *([use_case.split.group_column] if use_case.split.group_column else []),
    ]
    missing = [c for c in needed if c not in spark_types]
    if missing:
        raise FeatureTableError(
            f"{use_case.table}: column(s) {missing} named in config/ml/{use_case.name}.yaml "
            f"are not in the table (columns: {sorted(spark_types)})"
        )
    unknown_cat = [c for c in use_case.categorical_columns if c not in spark_types]
    if unknown_cat:
        raise FeatureTableError(
            f"config/ml/{use_case.name}.yaml: categorical_columns {unknown_cat} not in {use_case.table}"
        )
    features = use_case.feature_columns(list(spark_types))
    if not features:
        raise FeatureTableError(f"{use_case.table}: no feature columns left after exclusions")
    categorical = []
    for name in features:
        kind = spark_types[name]
        if kind == "string" or name in use_case.categorical_columns:
            categorical.append(name)
        elif not kind.startswith(NUMERIC_SPARK_TYPES):
            raise FeatureTableError(
                f"{use_case.table}.{name}: type {kind} cannot be a feature; derive a number "
                f"from it in dbt or add it to exclude_columns in config/ml/{use_case.name}.yaml"
            )
    return features, categorical


def split_periods(periods: list, test_periods: int, table: str, column: str) -> tuple[list, list]:
    """Earlier periods train, the last `test_periods` test; pure."""
    periods = sorted(p for p in periods if p is not None)
    if len(periods) <= test_periods:
        raise FeatureTableError(
            f"{table}.{column}: {len(periods)} distinct period(s) {periods}; need more than "
            f"test_periods={test_periods} to train on earlier periods and test on the last"
        )
    return periods[:-test_periods], periods[-test_periods:]


def fold_expression(column: str, nfolds: int):
    """Fold 0..nfolds-1 from a stable hash of `column`: all rows of one value share it."""
    from pyspark.sql import functions as F

    return F.pmod(F.xxhash64(F.col(column)), F.lit(nfolds)).cast("int")


def snapshot(spark, use_case: UseCase, out_dir: Path) -> Snapshot:
    """Write the training rows, and their train/test split, as Parquet under `out_dir`."""
    from pyspark.sql import functions as F

    pop = use_case.population
    df = spark.table(use_case.table)
    spark_types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    features, categorical = feature_types(use_case, spark_types)
    table_dir, train_dir, test_dir = (out_dir / n for n in ("table", "train", "test"))
    labelled = F.col(pop.training_flag)
    rows_unlabelled = df.filter(~labelled | labelled.isNull()).count()
    df.filter(labelled).write.mode("errorifexists").parquet(str(table_dir))
    snap = spark.read.parquet(str(table_dir))

    target, period = F.col(use_case.target), F.col(use_case.split.time_column)
    bad = snap.filter(target.isNull() | ~target.isin(0, 1)).limit(1).collect()
    if bad:
        raise FeatureTableError(
            f"{use_case.table}.{use_case.target}: label must be 0 or 1, found {bad[0][use_case.target]!r} "
            f"(row {dict((c, bad[0][c]) for c in use_case.id_columns)}); fix the dbt model"
        )
    periods = [r[0] for r in snap.select(period).distinct().collect()]
    train_p, test_p = split_periods(
        periods, use_case.split.test_periods, use_case.table, use_case.split.time_column
    )
    test_rows = snap.filter(period.isin(test_p))
    test_start = test_rows.agg(F.min(pop.prediction_date)).first()[0]
    label_end = F.date_add(F.col(pop.prediction_date), pop.label_horizon_days)
    earlier = snap.filter(period.isin(train_p))
    train_rows = earlier.filter(label_end <= F.lit(test_start))
    rows_gap = earlier.count() - train_rows.count()
    fold_column = None
    if use_case.split.group_column and use_case.automl.nfolds > 1:
        fold_column = FOLD_COLUMN
        folds = fold_expression(use_case.split.group_column, use_case.automl.nfolds)
        train_rows = train_rows.withColumn(fold_column, folds)
    # one file in id order: H2O lists a folder's files in no fixed order, and row order
    # changes GBM's row sampling, so several files would break reproducibility
    ordered = [F.col(c) for c in use_case.id_columns]
    train_rows.orderBy(*ordered).coalesce(1).write.parquet(str(train_dir))
    test_rows.orderBy(*ordered).coalesce(1).write.parquet(str(test_dir))

    counts = {
        r[0]: (r[1], r[2])
        for r in spark.read.parquet(str(table_dir))
        .groupBy(period)
        .agg(F.count("*"), F.sum(target))
        .collect()
    }
    rows = lambda ps: sum(counts.get(p, (0, 0))[0] for p in ps)  # noqa: E731
    pos = lambda ps: int(sum(counts.get(p, (0, 0))[1] or 0 for p in ps))  # noqa: E731
    result = Snapshot(
        table=use_case.table,
        directory=str(out_dir),
        train_path=str(train_dir),
        test_path=str(test_dir),
        features=features,
        categorical=categorical,
        train_periods=train_p,
        test_periods=test_p,
        rows_table=sum(c[0] for c in counts.values()),
        rows_train=rows(train_p) - rows_gap,
        rows_test=rows(test_p),
        rows_without_period=counts.get(None, (0, 0))[0],
        rows_unlabelled=rows_unlabelled,
        rows_gap=rows_gap,
        test_start=str(test_start) if test_start is not None else None,
        fold_column=fold_column,
        positives_train=_positives(spark.read.parquet(str(train_dir)), use_case.target),
        positives_test=pos(test_p),
        files_sha256=_files_sha256([train_dir, test_dir]),
        spark_types=spark_types,
    )
    for name, n_pos, n in (
        ("train", result.positives_train, result.rows_train),
        ("test", result.positives_test, result.rows_test),
    ):
        if n_pos == 0 or n_pos == n:
            raise FeatureTableError(
                f"{use_case.table}: the {name} split ({n} rows) has only one class of "
                f"{use_case.target}; a binary model needs both"
            )
    return result


def import_h2o(h2o, snap: Snapshot, use_case: UseCase, which: str):
    """Import the train or test Parquet folder into H2O; categoricals and the label as
    enums (the Parquet parser ignores col_types, so they are converted after import)."""
    path = snap.train_path if which == "train" else snap.test_path
    frame = h2o.import_file(
        path=path,
        pattern=PARQUET_PATTERN,
        destination_frame=f"{use_case.name}_{Path(snap.directory).name}_{which}",
    )
    for name in [*snap.categorical, use_case.target]:
        if frame.types[name] != "enum":
            frame[name] = frame[name].asfactor()
    return frame


def _positives(frame, target: str) -> int:
    from pyspark.sql import functions as F

    return int(frame.agg(F.sum(F.col(target))).first()[0] or 0)


def _files_sha256(dirs: list[Path]) -> str:
    digest = hashlib.sha256()
    for d in dirs:
        for f in sorted(d.glob("*.parquet")):
            digest.update(f.name.encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()
