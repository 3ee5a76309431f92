"""Read the committed files of a Delta table with plain Parquet readers.

Ingestion reads small parts of earlier table versions (key columns, stored profiles).
Going file by file through the Delta log keeps it off `pyarrow.dataset`, whose import
alone pulls in pandas and costs more than reading these few columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from cms_pipeline.ingest.delta_writer import PARTITION
from cms_pipeline.storage import filesystem, join


def committed_files(dt: DeltaTable, batch_ids: Iterable[str] | None = None) -> list[str]:
    """URIs of the data files of this table version, optionally of some batches only."""
    actions = pa.table(dt.get_add_actions(flatten=True))
    paths = actions.column("path").to_pylist()
    if batch_ids is not None:
        wanted = set(batch_ids)
        batches = actions.column(f"partition.{PARTITION}").to_pylist()
        paths = [p for p, b in zip(paths, batches, strict=True) if b in wanted]
    base = dt.table_uri.rstrip("/")
    if base.startswith("file://"):  # delta-rs gives a local table as a URL: "a lake" -> a%20lake
        base = unquote(base)
    return [join(base, p) for p in paths]


def committed_rows(dt: DeltaTable) -> int:
    """Row count of this version, from the log's per-file statistics."""
    return int(pa.table(dt.get_add_actions(flatten=True)).column("num_records").to_numpy().sum())


def read_batches(
    dt: DeltaTable, columns: list[str] | None = None, batch_ids: Iterable[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """Record batches of the committed files (data columns only, not the partition)."""
    for uri in committed_files(dt, batch_ids):
        fs, path = filesystem(uri)
        with fs.open(path, "rb") as f:
            yield from pq.ParquetFile(f).iter_batches(columns=columns)


def read_table(dt: DeltaTable, columns: list[str] | None = None) -> pa.Table | None:
    """The whole (small) table version; None when it has no rows."""
    batches = list(read_batches(dt, columns))
    if not any(b.num_rows for b in batches):
        return None
    return pa.concat_tables(
        [pa.Table.from_batches([b]) for b in batches], promote_options="default"
    )
