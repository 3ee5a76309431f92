"""Append-only Delta writes where each write lands in a folder of its own.

Parquet files are written by pyarrow into `<table>/_batch_id=<id>/` and become visible
in one Delta commit (AddActions). Until that commit they are orphans nobody reads, so a
process killed mid-write leaves nothing half-visible, and Spark tables that list
committed batch folders never see a partial one.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    RemoveAction,
    create_table_with_add_actions,
)

from cms_pipeline.storage import delta_storage_options, filesystem, is_local, join

PARTITION = "_batch_id"

# One writer at a time per table within this process (ingest loads files of different
# tables in threads, and they all append to the same metadata tables): two threads must
# not race to create a table. Other processes are kept apart by Delta's commit protocol.
_TABLE_LOCKS: dict[str, threading.Lock] = {}
_TABLE_LOCKS_GUARD = threading.Lock()


def table_lock(table_uri: str) -> threading.Lock:
    with _TABLE_LOCKS_GUARD:
        return _TABLE_LOCKS.setdefault(table_uri.rstrip("/"), threading.Lock())


def open_table(uri: str, version: int | None = None) -> DeltaTable | None:
    try:
        return DeltaTable(uri, version=version, storage_options=delta_storage_options(uri))
    except TableNotFoundError:
        return None


# Parquet settings of the files we write. zstd at level 1: about as fast as snappy and a
# third smaller. Min/max statistics only on the line number: bronze is read whole batches
# at a time (partition `_batch_id`), so text min/max would cost time and prune nothing.
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 1
STATISTICS_COLUMNS = ["_source_line"]


@dataclass
class BatchWriter:
    """Writes one batch of rows (partition `_batch_id=<batch_id>`) as Parquet files.

    `dictionary_columns` (text) are handed to Parquet dictionary-encoded: a batch whose
    column is already a pyarrow dictionary is written without hashing its values again;
    a plain one is encoded here. When they are given, the other columns (ids, nearly all
    distinct) are written plain. Files store plain Parquet strings either way (no Arrow
    schema is embedded), so readers see the text columns of `schema`.
    """

    table_uri: str
    batch_id: str
    schema: pa.Schema  # data columns, without the partition column
    target_file_rows: int = 1_000_000
    dictionary_columns: list[str] = field(default_factory=list)
    adds: list[AddAction] = field(default_factory=list)
    rows: int = 0
    _writer: pq.ParquetWriter | None = None
    _file = None
    _rel_path: str = ""
    _file_rows: int = 0

    def __post_init__(self) -> None:
        encoded = set(self.dictionary_columns)
        self._physical = pa.schema(
            [
                f.with_type(pa.dictionary(pa.int32(), f.type)) if f.name in encoded else f
                for f in self.schema
            ]
        )

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows == 0:
            return
        if self._writer is None:
            self._open()
        if batch.schema != self._physical:
            batch = batch.cast(self._physical)
        self._writer.write(batch)
        self._file_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._file_rows >= self.target_file_rows:
            self._close_file()

    def _open(self) -> None:
        fs, base = filesystem(self.table_uri)
        self._rel_path = (
            f"{PARTITION}={self.batch_id}/part-{len(self.adds):05d}-{uuid.uuid4().hex}.parquet"
        )
        fs.makedirs(join(base, f"{PARTITION}={self.batch_id}"), exist_ok=True)
        path = join(base, self._rel_path)
        # Local files are written by Arrow itself: through fsspec's Python file object
        # every page write would take the GIL from the parse and check threads.
        self._file = pa.OSFile(path, "wb") if is_local(self.table_uri) else fs.open(path, "wb")
        self._writer = pq.ParquetWriter(
            self._file,
            self._physical,
            compression=COMPRESSION,
            compression_level=COMPRESSION_LEVEL,
            write_statistics=[c for c in STATISTICS_COLUMNS if c in self.schema.names] or False,
            use_dictionary=self.dictionary_columns or True,
            store_schema=False,
        )

    def _close_file(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        size = self._file.tell()
        self._file.close()
        self.adds.append(
            AddAction(
                path=self._rel_path,
                size=size,
                partition_values={PARTITION: self.batch_id},
                modification_time=int(time.time() * 1000),
                data_change=True,
                stats=json.dumps({"numRecords": self._file_rows}),
            )
        )
        self._writer, self._file, self._file_rows = None, None, 0

    def finish(self) -> list[AddAction]:
        self._close_file()
        return self.adds


class Background:
    """Calls `fn` on each item in a thread of its own, in order; at most `depth` items
    wait. pyarrow releases the GIL, so Parquet encoding and profiling overlap parsing.
    An error is re-raised in the caller's thread at the next `put` or at `close`."""

    def __init__(self, fn, depth: int = 2):
        self._fn = fn
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._fn(item)
                except BaseException as exc:
                    self._error = exc

    def put(self, item) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error


class BackgroundWriter:
    """A BatchWriter whose Parquet encoding runs in one thread and `on_batch` (e.g.
    profiling) in another, both overlapping the caller's parsing."""

    def __init__(self, writer: BatchWriter, depth: int = 2, on_batch=None):
        self.writer = writer
        self._workers = [Background(writer.write, depth)]
        if on_batch is not None:
            self._workers.append(Background(on_batch, depth))

    def write(self, batch) -> None:
        for worker in self._workers:
            worker.put(batch)

    def close(self) -> None:
        errors = []
        for worker in self._workers:  # stop every thread before raising the first error
            try:
                worker.close()
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    @property
    def rows(self) -> int:
        return self.writer.rows

    @property
    def schema(self) -> pa.Schema:
        return self.writer.schema

    def finish(self) -> list[AddAction]:
        self.close()
        return self.writer.finish()


def table_schema(data_schema: pa.Schema) -> pa.Schema:
    return data_schema.append(pa.field(PARTITION, pa.string()))


def commit_batch(
    table_uri: str, data_schema: pa.Schema, adds: list[AddAction], metadata: dict[str, str]
) -> int:
    """Make the batch's files visible in one commit; returns the new table version.

    Columns the table does not have yet (schema evolution) are added first.
    """
    with table_lock(table_uri):
        return _commit_batch(table_uri, data_schema, adds, metadata)


def _commit_batch(
    table_uri: str, data_schema: pa.Schema, adds: list[AddAction], metadata: dict[str, str]
) -> int:
    props = CommitProperties(custom_metadata=metadata)
    full_schema = table_schema(data_schema)
    dt = open_table(table_uri)
    if dt is None:
        try:
            create_table_with_add_actions(
                table_uri,
                DeltaSchema.from_arrow(full_schema),
                adds,
                mode="append",
                partition_by=[PARTITION],
                commit_properties=props,
                storage_options=delta_storage_options(table_uri),
            )
            return open_table(table_uri).version()
        except Exception:  # another writer created it first: append below
            dt = open_table(table_uri)
            if dt is None:
                raise
    _add_missing_columns(dt, full_schema)
    dt.create_write_transaction(
        adds,
        mode="append",
        schema=dt.schema(),
        partition_by=[PARTITION],
        commit_properties=props,
    )
    dt.update_incremental()
    checkpoint_if_due(dt)
    return dt.version()


CHECKPOINT_EVERY = 10


def remove_actions(actions: pa.Table, data_change: bool) -> list[RemoveAction]:
    """RemoveActions for rows of `get_add_actions(flatten=True)`: `data_change` False when
    the rows stay (compaction rewrote them), True when they leave the table (retraction)."""
    now = int(time.time() * 1000)
    return [
        RemoveAction(
            path=p,
            data_change=data_change,
            deletion_timestamp=now,
            size=s,
            partition_values={PARTITION: b},
        )
        for p, s, b in zip(
            actions.column("path").to_pylist(),
            actions.column("size_bytes").to_pylist(),
            actions.column(f"partition.{PARTITION}").to_pylist(),
            strict=True,
        )
    ]


def commit_rewrite(
    dt: DeltaTable, adds: list[AddAction], removes: list[RemoveAction], metadata: dict
) -> int:
    """One commit that adds new batch files and removes old ones; returns the version.
    Nothing inside a committed batch folder changes: removed files stay for old versions."""
    dt.create_write_transaction(
        adds + removes,
        mode="append",
        schema=dt.schema(),
        partition_by=[PARTITION],
        commit_properties=CommitProperties(custom_metadata=metadata),
    )
    dt.update_incremental()
    checkpoint_if_due(dt)
    return dt.version()


def checkpoint_if_due(dt: DeltaTable) -> bool:
    """A checkpoint every CHECKPOINT_EVERY commits: opening reads one Parquet file
    instead of every JSON commit since the start."""
    if dt.version() > 0 and dt.version() % CHECKPOINT_EVERY == 0:
        dt.create_checkpoint()
        return True
    return False


def _current_schema(dt: DeltaTable) -> pa.Schema:
    return pa.schema(dt.schema().to_arrow())


def _add_missing_columns(dt: DeltaTable, wanted: pa.Schema) -> None:
    from deltalake.schema import Field, PrimitiveType

    have = set(_current_schema(dt).names)
    new = [
        Field(f.name, PrimitiveType("string"), nullable=True) for f in wanted if f.name not in have
    ]
    if new:
        dt.alter.add_columns(new)


def batches_in_table(dt: DeltaTable | None) -> set[str]:
    """The committed `_batch_id` values of a table's current version."""
    if dt is None:
        return set()
    actions = dt.get_add_actions(flatten=True)
    column = f"partition.{PARTITION}"
    if actions.num_rows == 0 or column not in actions.column_names:
        return set()
    return set(pa.table(actions).column(column).to_pylist())


def append_rows(table_uri: str, data: pa.Table, partition_by: list[str] | None = None) -> int:
    """Small metadata tables (ledger, reports): a plain delta-rs append."""
    with table_lock(table_uri):
        write_deltalake(
            table_uri,
            data,
            mode="append",
            partition_by=partition_by,
            schema_mode="merge",
            storage_options=delta_storage_options(table_uri),
        )
        return open_table(table_uri).version()
