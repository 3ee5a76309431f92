"""What the lake holds: every table with its layer, version, rows and last update, and
every model with its metrics and training data. Reads metadata only (no Spark)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from cms_pipeline.config import Settings
from cms_pipeline.ingest.delta_writer import open_table
from cms_pipeline.publish.publishing import published_build
from cms_pipeline.storage import filesystem, join


def _delta_entry(layer: str, name: str, uri: str) -> dict | None:
    dt = open_table(uri)
    if dt is None:
        return None
    actions = pa.table(dt.get_add_actions(flatten=True))
    rows = pc.sum(actions.column("num_records")).as_py() if actions.num_rows else 0
    last = dt.history(1)[0].get("timestamp")
    return {
        "layer": layer,
        "table": name,
        "format": "delta",
        "version": dt.version(),
        "rows": rows,
        "files": actions.num_rows,
        "updated": datetime.fromtimestamp(last / 1000, UTC).isoformat(timespec="seconds")
        if last
        else None,
        "location": uri,
    }


def delta_tables(settings: Settings) -> list[dict]:
    fs, root = filesystem(settings.lake)
    entries = []
    for layer, folder in (("bronze", "bronze"), ("quarantine", "quarantine"), ("meta", "_meta")):
        base = join(root, folder)
        if not fs.exists(base):
            continue
        for path in sorted(fs.ls(base, detail=False)):
            name = path.rstrip("/").rsplit("/", 1)[-1]
            entry = _delta_entry(layer, name, join(settings.lake, folder, name))
            if entry:
                entries.append(entry)
    return entries


def published_tables(settings: Settings) -> list[dict]:
    """Silver and gold as published (the build each view points at), from the warehouse."""
    warehouse = settings.metadata_path("spark-warehouse")
    entries = []
    for layer in ("silver", "gold"):
        build = published_build(settings, layer)
        if not build:
            continue
        for model in build["models"]:
            path = Path(warehouse, f"{build['schema']}.db", model)
            rows = ds.dataset(path, format="parquet").count_rows() if path.exists() else None
            entries.append(
                {
                    "layer": layer,
                    "table": model,
                    "format": "parquet",
                    "version": build["build_id"],
                    "rows": rows,
                    "files": None,
                    "updated": build["published_at"],
                    "location": str(path),
                }
            )
    return entries


def models(settings: Settings) -> list[dict]:
    # inside: models_ml builds on cms_pipeline, so this import points up
    # (docs/architecture.md, "Checking the import direction")
    from models_ml.registry import model_catalog

    return model_catalog(settings)


def catalog(settings: Settings) -> dict:
    return {
        "tables": delta_tables(settings) + published_tables(settings),
        "models": models(settings),
    }
