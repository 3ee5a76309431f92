"""Comparing a new batch with what came before it (`diff_batch`): key changes from key
sets, per-column shifts from profiles, and `profile_state`, which profiles the table's
previous state (or a previous delivery) in one streaming pass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from cms_pipeline.batch_diff.report import BatchDiff, ColumnShift, KeyChanges, Thresholds
from cms_pipeline.batch_diff.shifts import column_shift
from cms_pipeline.config import SourceContract
from cms_pipeline.profiling.profilers import KeySet, Profiler
from cms_pipeline.profiling.records import BatchProfile

if TYPE_CHECKING:  # pyarrow.dataset imports pandas: only for type hints here
    import pyarrow.dataset as ds

DEFAULT_THRESHOLDS = Thresholds()


def key_changes(
    new_keys: KeySet, table_keys: KeySet | None, previous_delivery_keys: KeySet | None
) -> KeyChanges:
    """New keys (not in `table_keys`) and disappeared ones (in the previous delivery only)."""
    new = None if table_keys is None else new_keys.minus(table_keys)
    return KeyChanges(
        key_columns=list(new_keys.key_columns),
        batch_keys=len(new_keys),
        new_keys=new,
        existing_keys=None if new is None else len(new_keys) - new,
        previous_delivery_keys=(
            None if previous_delivery_keys is None else len(previous_delivery_keys)
        ),
        disappeared_keys=(
            None if previous_delivery_keys is None else previous_delivery_keys.minus(new_keys)
        ),
    )


def diff_batch(
    new_profile: BatchProfile,
    *,
    rows_before: int,
    previous_profile: BatchProfile | None = None,
    new_keys: KeySet | None = None,
    table_keys: KeySet | None = None,
    previous_delivery_keys: KeySet | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> BatchDiff:
    """Compare a new batch with what came before it.

    new_profile: profile of the new batch. rows_before: rows in the table before it.
    previous_profile: profile of the table's previous state (or of the previous delivery);
        None on a first load: then only counts and keys are reported.
    new_keys: key set of the new batch (`KeyTracker.key_set()` from its profiler).
    table_keys: key set of the table before the batch -> `new_keys` count.
    previous_delivery_keys: key set of the previous delivery of the same file name or
        kind -> `disappeared_keys` count (keys there, not in the new batch).
    """
    keys = None if new_keys is None else key_changes(new_keys, table_keys, previous_delivery_keys)
    shifts = []
    baseline = None
    if previous_profile is not None and previous_profile.rows > 0:
        baseline = (
            f"{previous_profile.table} {previous_profile.source_file or ''} "
            f"batch {previous_profile.batch_id} ({previous_profile.rows:,} rows)"
        ).replace("  ", " ")
        before = {c.column: c for c in previous_profile.columns}
    else:
        before = {}
    for col in new_profile.columns:
        if col.column in before:
            shifts.append(column_shift(before[col.column], col, thresholds))
        else:
            shifts.append(
                ColumnShift(
                    col.column,
                    col.logical_type,
                    None,
                    col.null_rate,
                    mean_after=col.mean,
                    std_after=col.std,
                )
            )
    return BatchDiff(
        table=new_profile.table,
        source_file=new_profile.source_file,
        batch_id=new_profile.batch_id,
        rows_before=rows_before,
        rows_batch=new_profile.rows,
        baseline=baseline,
        keys=keys,
        columns=shifts,
        thresholds=thresholds,
    )


def profile_state(
    source: ds.Dataset | pa.Table | Iterable[pa.RecordBatch],
    contract: SourceContract,
    *,
    key_columns: list[str] | None = None,
    columns: list[str] | None = None,
    **profiler_options: Any,
) -> tuple[BatchProfile, KeySet | None]:
    """Profile and key set of a table's previous state (or a previous delivery), one pass.

    `source` is a pyarrow Dataset (e.g. `DeltaTable(uri).to_pyarrow_dataset()`, filtered
    by the caller), a Table, or any iterable of batches. Memory: the profile's bounded
    state plus 8 bytes per row for the key set.
    """
    keys = contract.keys if key_columns is None else key_columns
    if isinstance(source, pa.Table):
        batches = source.to_batches()
    elif hasattr(source, "to_batches"):  # a pyarrow Dataset
        wanted = columns or [
            n for n in source.schema.names if n in set(contract.column_names) | set(keys)
        ]
        batches = source.to_batches(columns=wanted)
    else:
        batches = source
    profiler = Profiler(contract, key_columns=keys, **profiler_options)
    for batch in batches:
        if batch.num_rows:
            profiler.update(batch)
    key_set = profiler.keys.key_set() if profiler.keys is not None else None
    return profiler.result(), key_set
