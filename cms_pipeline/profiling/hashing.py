"""Stable 64-bit hashes of text values and of key tuples.

Hashes are computed with numpy from the Arrow string buffers (pyarrow has no hash
kernel): a polynomial over the bytes mod 2^64, finished by splitmix64's mixer. They are
stable across processes, which is more than the sketches and key sets need.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_HASH_SEED = 0x5EED

_POLY = np.uint64(0x100000001B3)  # FNV-1's 64-bit prime: odd, so no bit is lost
_NULL_HASH = np.uint64(0x6E756C6C6E756C6C)
# _LOW_BYTES[r]: the low r bytes of a word (the rest of a value's last word is not its own)
_LOW_BYTES = np.array([(1 << (8 * r)) - 1 for r in range(8)] + [2**64 - 1], dtype=np.uint64)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit reaches every output bit."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def hash_values(array: pa.Array) -> np.ndarray:
    """64-bit hash of each value of a string array (a null hashes like the empty text).

    Each value is read as 8-byte words, straight from the Arrow data buffer: word k of
    every value that has one is gathered in one numpy step, so the cost follows the
    number of words, not of values times Python calls."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())  # int64 offsets, one code path
    n = len(array)
    _, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[array.offset : array.offset + n + 1]
    first, last = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buf, dtype=np.uint8)[first:last] if last > first else []
    starts, lengths = offsets[:-1] - first, np.diff(offsets)
    hashes = _mix(lengths.astype(np.uint64) ^ np.uint64(_HASH_SEED))
    width = int(lengths.max(initial=0))
    if n and width == lengths.min() and width <= 64:  # ids: one length, a matrix of words
        matrix = np.zeros((n, -(-width // 8) * 8), dtype=np.uint8)
        matrix[:, :width] = np.asarray(data).reshape(n, width)
        for words in matrix.view("<u8").T:
            hashes = _mix(hashes * _POLY + words)
        return hashes
    padded = np.concatenate([data, np.zeros(8, dtype=np.uint8)])  # a last word may overrun
    windows = np.lib.stride_tricks.sliding_window_view(padded, 8)
    rows = np.arange(n)
    for k in range(-(-width // 8)):
        rows = rows[lengths[rows] > 8 * k]
        words = np.ascontiguousarray(windows[starts[rows] + 8 * k]).view("<u8").ravel()
        words &= _LOW_BYTES[np.minimum(lengths[rows] - 8 * k, 8)]
        hashes[rows] = _mix(hashes[rows] * _POLY + words)
    return hashes


def hash_keys(batch: pa.RecordBatch | pa.Table, key_columns: list[str]) -> np.ndarray:
    """64-bit hash of each row's key tuple (nulls included, as null)."""
    combined = np.full(batch.num_rows, np.uint64(_HASH_SEED), dtype=np.uint64)
    for name in key_columns:
        column = batch.column(name)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        hashes = hash_values(column)
        if column.null_count:
            hashes[~column.is_valid().to_numpy(zero_copy_only=False)] = _NULL_HASH
        combined = _mix(combined * _POLY + hashes)
    return combined
