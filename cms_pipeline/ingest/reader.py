"""Streaming reader for one landing file (CSV, or a CMS ZIP holding one CSV).

Yields Arrow record batches of the file's values as text with the physical line number
of each row, and collects rows the CSV parser could not split into the expected number
of fields. Memory stays bounded by the block size whatever the file size.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from cms_pipeline.ingest.errors import IngestError
from cms_pipeline.storage import filesystem

BLOCK_SIZE = 16 << 20  # larger blocks measured faster here (fewer dictionaries to build)


@dataclass
class ParseFailure:
    line: int
    text: str
    expected: int
    actual: int


@dataclass
class LineBatch:
    batch: pa.RecordBatch
    lines: np.ndarray  # physical line number of each row (header = line 1)


def sha256_of(uri: str, chunk: int = 8 << 20) -> tuple[str, int]:
    """Content hash and size of the delivered file (the ZIP itself for ZIPs)."""
    fs, path = filesystem(uri)
    digest, size = hashlib.sha256(), 0
    with fs.open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


@contextmanager
def open_delivery(uri: str) -> Iterator[tuple[BinaryIO, str]]:
    """Open the CSV inside a delivery: the file itself, or the one CSV in a ZIP."""
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as raw:
        if path.lower().endswith(".zip"):
            try:
                archive = zipfile.ZipFile(raw)
            except zipfile.BadZipFile as exc:
                raise IngestError(
                    uri,
                    f"not a readable ZIP archive ({exc})",
                    "Download the file again; CMS ships one CSV per ZIP.",
                ) from exc
            members = [m for m in archive.namelist() if m.lower().endswith(".csv")]
            if len(members) != 1:
                raise IngestError(
                    uri,
                    f"the ZIP holds {len(members)} CSV files {members}, expected 1",
                    "Unpack it and land each CSV (or one-CSV ZIP) separately.",
                )
            with archive.open(members[0]) as member:
                yield member, members[0]
        else:
            yield raw, path.rsplit("/", 1)[-1]


def read_header(stream: BinaryIO) -> bytes:
    return stream.readline()


class NeedsExactPass(Exception):
    """The fast pass met a row it cannot place (bad field count): read exactly."""


def stream_batches(
    stream: BinaryIO,
    column_names: list[str],
    delimiter: str,
    failures: list[ParseFailure] | None = None,
    block_size: int = BLOCK_SIZE,
    encoded: Collection[str] = (),
) -> Iterator[LineBatch]:
    """Batches of the rows after the header; the `encoded` columns come dictionary-encoded
    (the parser builds each batch's dictionary as it converts, cheaper than encoding the
    text afterwards).

    Fast pass (`failures` is None): multi-threaded parsing; the first row that does not
    split into the expected fields raises NeedsExactPass. Exact pass: single-threaded,
    because only then does pyarrow report the physical line of a row it cannot split;
    bad rows are appended to `failures` and the rows between them are numbered
    consecutively. Bytes are not checked here: validation finds non-UTF-8 values row by
    row (on each batch's dictionaries, far fewer than the rows).
    """
    exact = failures is not None
    failures = failures if exact else []
    first_failure = len(failures)

    def on_invalid(row) -> str:
        failures.append(
            ParseFailure(row.number + 1, row.text, row.expected_columns, row.actual_columns)
        )
        return "skip"

    try:
        reader = _open_csv(
            stream, column_names, delimiter, on_invalid if exact else None, block_size, encoded
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):  # a header and nothing after it
            return
        if exact:
            raise
        raise NeedsExactPass(str(exc)) from exc
    next_line = 2  # line 1 is the header
    used = first_failure
    for batch in _guarded(reader, exact):
        # The parser has reported every failure up to the end of this batch.
        failed_lines = [f.line for f in failures[used:]]
        used = len(failures)
        lines = _number_rows(next_line, batch.num_rows, failed_lines)
        if batch.num_rows:
            next_line = int(lines[-1]) + 1
        if failed_lines:
            next_line = max(next_line, max(failed_lines) + 1)
        yield LineBatch(batch, lines)


def _guarded(reader, exact: bool) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            if exact:
                raise
            raise NeedsExactPass(str(exc)) from exc
        yield batch


def _open_csv(stream, column_names, delimiter, on_invalid, block_size, encoded=()):
    exact = on_invalid is not None
    encoded = set(encoded)
    text = pa.string()
    dictionary = pa.dictionary(pa.int32(), text)
    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(
            use_threads=not exact, column_names=column_names, block_size=block_size
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter, invalid_row_handler=on_invalid, ignore_empty_lines=False
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={c: dictionary if c in encoded else text for c in column_names},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            check_utf8=False,  # see above
        ),
    )


def _number_rows(start: int, count: int, skipped: list[int]) -> np.ndarray:
    """The `count` line numbers from `start` on, leaving out the `skipped` ones."""
    if not skipped:
        return np.arange(start, start + count, dtype=np.int64)
    candidates = np.arange(start, start + count + len(skipped), dtype=np.int64)
    keep = ~np.isin(candidates, np.array(skipped, dtype=np.int64))
    return candidates[keep][:count]


def decode_line(data: bytes | str, encoding: str = "utf-8") -> str:
    """Raw line text for quarantine: undecodable bytes shown as \\xNN escapes."""
    if isinstance(data, str):
        return data
    return data.decode(encoding, errors="backslashreplace")
