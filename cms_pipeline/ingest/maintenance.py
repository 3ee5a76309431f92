"""Keep bronze fast to open and read as it grows, without breaking old versions.

- Checkpoints: a Delta checkpoint every `CHECKPOINT_EVERY` commits, so opening a table
  reads one Parquet checkpoint instead of every JSON commit.
- Compaction: small batch files are rewritten into a NEW batch folder, and one commit
  adds the new files and removes the old ones. Nothing inside a committed batch folder
  changes (the Spark tables list folders), and the old files stay on disk, so every
  older version still reads exactly as it did.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from cms_pipeline.config import Settings
from cms_pipeline.ingest.delta_writer import (
    PARTITION,
    BatchWriter,
    commit_rewrite,
    open_table,
    remove_actions,
)
from cms_pipeline.lake import bronze_uri
from cms_pipeline.storage import filesystem, join


@dataclass
class CompactionResult:
    table: str
    files_before: int
    files_compacted: int
    rows: int
    new_batch: str | None
    version: int | None


def compact(settings: Settings, table: str, small_bytes: int = 32 << 20) -> CompactionResult:
    """Rewrite the table's small batches (all files of a batch together under
    `small_bytes`) into one new batch.

    Whole batches only: Spark's bronze tables read a batch folder as a partition, so a
    batch that lost some of its files to compaction would still be read whole, and its
    compacted rows twice.
    """
    uri = bronze_uri(settings, table)
    dt = open_table(uri)
    if dt is None:
        return CompactionResult(table, 0, 0, 0, None, None)
    actions = pa.table(dt.get_add_actions(flatten=True))
    batch_col = f"partition.{PARTITION}"
    sizes = actions.group_by(batch_col).aggregate([("size_bytes", "sum")])
    small_batches = sizes.filter(pc.less(sizes["size_bytes_sum"], small_bytes))[batch_col]
    small = actions.filter(pc.is_in(actions[batch_col], value_set=small_batches))
    if len(small_batches) < 2:
        return CompactionResult(table, actions.num_rows, 0, 0, None, dt.version())
    fs, base = filesystem(uri)
    paths = [join(base, p) for p in small["path"].to_pylist()]
    data_schema = pa.schema([f for f in pa.schema(dt.schema().to_arrow()) if f.name != PARTITION])
    batch_id = f"compact-{uuid.uuid4().hex[:12]}"
    writer = BatchWriter(uri, batch_id, data_schema, settings.ingest.target_file_rows)
    source = ds.dataset(paths, schema=data_schema, format="parquet", filesystem=fs)
    for batch in source.to_batches():
        writer.write(batch)
    adds = writer.finish()
    version = commit_rewrite(
        dt,
        adds,
        remove_actions(small, data_change=False),
        {"cms.operation": "compaction", "batch_id": batch_id},
    )
    return CompactionResult(table, actions.num_rows, small.num_rows, writer.rows, batch_id, version)
