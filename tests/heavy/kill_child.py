"""Child processes of test_kill_matrix.py.

    python kill_child.py run POINT MARK [SEEN] -- ARGS...
        `cms-pipeline ARGS` (the real CLI entry, cms_pipeline.cli:app) with one library
        function wrapped so that the process SIGKILLs itself at POINT (KILL_POINTS); the
        file MARK is written first, naming what was hit (the proof the point was reached).
        POINT "none" runs the CLI as it is. With SEEN, once the CLI has exited (whatever
        its code), what a reader sees (below) is written to the file SEEN by this same
        process: it saves a reader child's JVM start where a fresh reader proves nothing
        more; the process then exits with the CLI's code.
    python kill_child.py read LAKE
        what a reader sees, as JSON on stdout: per published view of silver and gold the
        builds its definition reads, rows and numeric totals of every gold view, and the
        predictions views' rows (no lease taken: a reader completes nothing).

No fault hook lives in product code: the wrapped functions are the real ones.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import sys
from pathlib import Path

BUILD = re.compile(r"\b(silver|gold)_build_([0-9a-z_]+?)\b[`.]")


def _die(mark: str, what: str) -> None:
    Path(mark).write_text(what)
    os.kill(os.getpid(), signal.SIGKILL)


def _wrap(owner, name: str, mark: str, *, before=None, after=None, nth: int = 1) -> None:
    """Replace owner.name by a wrapper that dies before the call when `before(args)`, or
    after it when `after(args)` holds, the nth time the condition holds."""
    real = getattr(owner, name)
    seen = [0]

    def hit(test, args, kwargs) -> bool:
        if test is None or not test(args, kwargs):
            return False
        seen[0] += 1
        return seen[0] == nth

    def wrapped(*args, **kwargs):
        if hit(before, args, kwargs):
            _die(mark, f"before {name}{_short(args)}")
        result = real(*args, **kwargs)
        if hit(after, args, kwargs):
            _die(mark, f"after {name}{_short(args)}")
        return result

    setattr(owner, name, wrapped)


def _short(args) -> str:
    """What the call was about: its text arguments, and the file of a ledger row."""
    shown = [str(a)[:200] for a in args if isinstance(a, str | dict)]
    shown += [
        f"{r.get('source_file')} {r.get('status')}"
        for a in args
        if isinstance(a, list)
        for r in a
        if isinstance(r, dict)
    ]
    return " " + " | ".join(shown)


def _is_quarantine(args, kwargs) -> bool:
    return "/quarantine" in str(args[0])


def _is_bronze(args, kwargs) -> bool:
    return "/bronze/" in str(args[0])


def _loaded_row(args, kwargs) -> bool:
    return any(row.get("status") == "loaded" for row in args[1])


def _first(args, kwargs, name: str) -> str:
    """The first argument after self, given by position or by `name` (Soda passes
    `sqlQuery=` to SparkSession.sql)."""
    return str(args[1] if len(args) > 1 else kwargs.get(name, ""))


def _sql(pattern: str):
    found = re.compile(pattern, re.IGNORECASE | re.MULTILINE)
    return lambda args, kwargs: bool(found.search(_first(args, kwargs, "sqlQuery")))


def _predictions_version(args, kwargs) -> bool:
    """A latest-predictions version table (`predictions.<name>__<stamp>`), not the history
    (models_ml.batch: the history is appended first, then the version written)."""
    name = _first(args, kwargs, "name")
    return name.startswith("predictions.") and "__" in name


def install(point: str, mark: str) -> None:
    from pyspark.sql import DataFrameWriter, SparkSession

    load = importlib.import_module("cms_pipeline.ingest.load")
    ledger = importlib.import_module("cms_pipeline.ingest.ledger")
    points = {
        # ingest: quarantine rows committed, bronze not yet
        "quarantine_committed": lambda: _wrap(load, "commit_batch", mark, after=_is_quarantine),
        # the bronze Parquet files written, their Delta commit not made
        "bronze_files_written": lambda: _wrap(load, "commit_batch", mark, before=_is_bronze),
        # the bronze Delta commit made, the file's reports and ledger row not
        "bronze_committed": lambda: _wrap(load, "commit_batch", mark, after=_is_bronze),
        # a file loaded (first load, not a recovery): just before its ledger row
        "before_ledger": lambda: _wrap(ledger, "record", mark, before=_loaded_row),
        # dbt's session mode runs each statement through SparkSession.sql in this process:
        # after the second model of the silver build is created
        "silver_half_built": lambda: _wrap(
            SparkSession, "sql", mark, after=_sql(r"^\s*create\s+table\s+silver_build_"), nth=2
        ),
        # the gold publish has replaced its first view
        "gold_publish_half": lambda: _wrap(
            SparkSession,
            "sql",
            mark,
            after=_sql(r"^\s*create\s+or\s+replace\s+view\s+gold\."),
            nth=1,
        ),
        # the first analytics export written, the others and the web documents not
        "export_half": lambda: _wrap(DataFrameWriter, "parquet", mark, after=lambda a, k: True),
        # the history appended and a latest-predictions version table written, the
        # latest view not yet on it
        "predictions_written": lambda: _wrap(
            DataFrameWriter, "saveAsTable", mark, after=_predictions_version
        ),
    }
    if point != "none":
        points[point]()


KILL_POINTS = (
    "quarantine_committed",
    "bronze_files_written",
    "bronze_committed",
    "before_ledger",
    "silver_half_built",
    "gold_publish_half",
    "export_half",
    "predictions_written",
)


def run(point: str, mark: str, args: list[str], seen: str | None = None) -> None:
    install(point, mark)
    from cms_pipeline.cli import app

    try:
        app(args, prog_name="cms-pipeline")
        code = 0
    except SystemExit as done:
        code = done.code
    if seen:
        Path(seen).write_text(read(args[args.index("--lake") + 1]))
    sys.exit(code)


def read(lake: str) -> str:
    from pyspark.sql import types as T

    from cms_pipeline.config import load_settings
    from cms_pipeline.spark import get_spark

    spark = get_spark(load_settings(lake=lake))
    external = spark._jsparkSession.sessionState().catalog().externalCatalog()
    seen: dict = {"views": {}, "gold": {}, "predictions": {}}
    for layer in ("silver", "gold"):
        if not spark.catalog.databaseExists(layer):
            continue
        for t in spark.catalog.listTables(layer):
            if t.isTemporary or t.tableType != "VIEW":
                continue
            text = external.getTable(layer, t.name).viewText().get()
            if t.name.startswith("predictions_"):
                frame = spark.table(f"{layer}.{t.name}")
                runs = (
                    frame.groupBy("run_id").count().collect() if "run_id" in frame.columns else []
                )
                seen["predictions"][t.name] = {
                    "rows": frame.count(),
                    "reads": text,
                    "rows_by_run": {r["run_id"]: r["count"] for r in runs},
                }
                continue
            seen["views"][f"{layer}.{t.name}"] = sorted(
                {"_build_".join(m) for m in BUILD.findall(text)}
            )
            if layer == "gold":
                frame = spark.table(f"gold.{t.name}")
                numeric = [
                    f.name for f in frame.schema.fields if isinstance(f.dataType, T.NumericType)
                ]
                totals = frame.agg(*[_sum(c) for c in numeric]).first() if numeric else None
                seen["gold"][t.name] = {
                    "rows": frame.count(),
                    "totals": {c: round(float(totals[c] or 0), 2) for c in numeric},
                }
    return json.dumps(seen, sort_keys=True)


def _sum(column: str):
    from pyspark.sql import functions as F

    return F.sum(F.col(column).cast("double")).alias(column)


if __name__ == "__main__":
    if sys.argv[1] == "run":
        split = sys.argv.index("--")
        point, mark, *seen = sys.argv[2:split]
        run(point, mark, sys.argv[split + 1 :], *seen)
    else:
        print(read(sys.argv[2]), flush=True)
