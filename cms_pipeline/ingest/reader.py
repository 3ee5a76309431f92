"""Streaming reader for one landing file (CSV, or a CMS ZIP holding one CSV).

Yields Arrow record batches of the file's values as text with the physical line number
of each row, and collects rows the CSV parser could not split into the expected number
of fields. Memory stays bounded by the block size whatever the file size.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from cms_pipeline.ingest.counting import LineCountingReader
from cms_pipeline.ingest.errors import IngestError
from cms_pipeline.storage import filesystem

BLOCK_SIZE = 16 << 20  # larger blocks measured faster here (fewer dictionaries to build)
# A header row is a few KiB (the widest CMS file has under 150 columns): a first line
# longer than this has no line end, and is not read further to find one.
HEADER_LIMIT = 1 << 20
# ZIP bombs, judged from the archive's directory before anything is expanded (zipfile
# never yields more than the declared size, and fails the CRC when the bytes disagree).
# CMS CSVs expand 4-10x (the bundled samples 3.6-4.5x); a run of zeros about 1000x.
MAX_ZIP_RATIO = 200
MAX_ZIP_BYTES = 64 << 30  # a full CMS carrier file is about 1.3 GiB expanded


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
def open_delivery(uri: str, name: str | None = None) -> Iterator[tuple[BinaryIO, str]]:
    """Open the CSV inside a delivery: the file itself, or the one CSV in a ZIP.

    `name` is how errors name the file (default: the URI). A ZIP member that turns out
    corrupt while it is read (a bad CRC comes at its end) raises IngestError here.
    """
    name = name or uri
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as raw:
        if not path.lower().endswith(".zip"):
            yield raw, path.rsplit("/", 1)[-1]
            return
        try:
            archive = zipfile.ZipFile(raw)
        except zipfile.BadZipFile as exc:
            raise IngestError(
                name,
                f"not a readable ZIP archive ({exc})",
                "Download the file again; CMS ships one CSV per ZIP.",
                kind="zip_unreadable",
            ) from exc
        members = [m for m in archive.namelist() if m.lower().endswith(".csv")]
        if len(members) != 1:
            raise IngestError(
                name,
                f"the ZIP holds {len(members)} CSV files {members}, expected 1",
                "Unpack it and land each CSV (or one-CSV ZIP) separately.",
                kind="zip_members",
            )
        check_expansion(name, archive.getinfo(members[0]))
        try:
            with archive.open(members[0]) as member:
                yield member, members[0]
        except zipfile.BadZipFile as exc:
            crc = "CRC" in str(exc)
            raise IngestError(
                name,
                f"{members[0]} in the ZIP is corrupt ({exc})",
                "Download the file again (its bytes changed in transfer); nothing was stored.",
                kind="zip_crc" if crc else "zip_corrupt",
            ) from exc
        except (zlib.error, EOFError) as exc:
            raise IngestError(
                name,
                f"{members[0]} in the ZIP cannot be expanded ({exc})",
                "Download the file again (it is damaged or cut short); nothing was stored.",
                kind="zip_corrupt",
            ) from exc


def check_expansion(name: str, info: zipfile.ZipInfo) -> None:
    """Refuse a member whose declared expansion is absurd, before expanding any of it."""
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > MAX_ZIP_BYTES or ratio > MAX_ZIP_RATIO:
        raise IngestError(
            name,
            f"{info.filename} would expand from {info.compress_size:,} to {info.file_size:,} "
            f"bytes ({ratio:,.0f}x; limits {MAX_ZIP_RATIO}x and {MAX_ZIP_BYTES / 2**30:g} GiB): "
            "a ZIP bomb or not a CMS file",
            "Check where the file came from; nothing was expanded or stored. A genuine file "
            "this large can be landed as a plain CSV.",
            kind="zip_bomb",
        )


def read_header(stream: BinaryIO, name: str, limit: int | None = None) -> bytes:
    """The first line, read no further than `limit` bytes (HEADER_LIMIT) for its end."""
    limit = limit or HEADER_LIMIT
    header = stream.readline(limit + 1)
    lone_cr = b"\r" in header.rstrip(b"\r\n")  # old Mac line ends: one line to Python
    if not header.endswith(b"\n") and (len(header) > limit or lone_cr):
        raise IngestError(
            name,
            f"no line end (LF) in the first {min(len(header), limit):,} bytes"
            + (" but lone CR line ends" if lone_cr else "")
            + ": the file is not line-delimited text, or its line ends were lost",
            "Land the file as CMS ships it (one row per line, LF or CRLF line ends); "
            "nothing was stored.",
            line=1,
            kind="no_line_end",
        )
    return header


class NeedsExactPass(Exception):
    """The fast pass met a row it cannot place (bad field count): read exactly."""


def stream_batches(
    stream: BinaryIO,
    column_names: list[str],
    delimiter: str,
    failures: list[ParseFailure] | None = None,
    block_size: int | None = None,
    encoded: Collection[str] = (),
    name: str = "<stream>",
) -> Iterator[LineBatch]:
    """Batches of the rows after the header; the `encoded` columns come dictionary-encoded
    (the parser builds each batch's dictionary as it converts, cheaper than encoding the
    text afterwards).

    Fast pass (`failures` is None): multi-threaded parsing; the first row that does not
    split into the expected fields raises NeedsExactPass. Exact pass: single-threaded,
    because only then does pyarrow report the physical line of a row it cannot split;
    bad rows are appended to `failures` and the rows between them are numbered
    consecutively. Bytes are not checked here: validation finds non-UTF-8 values row by
    row (on each batch's dictionaries, far fewer than the rows). A line the parser cannot
    frame at all (longer than the block, or a quoted value running over line ends) raises
    IngestError naming the line where it starts (`name` names the file).
    """
    block_size = block_size or BLOCK_SIZE  # read here, so a test can set a small block
    exact = failures is not None
    failures = failures if exact else []
    first_failure = len(failures)

    def on_invalid(row) -> str:
        failures.append(
            ParseFailure(row.number + 1, row.text, row.expected_columns, row.actual_columns)
        )
        return "skip"

    next_line = 2  # line 1 is the header

    def unframed(exc: pa.ArrowInvalid) -> Exception:
        """The error to raise for a parser error: named, or a reason for the exact pass."""
        poison = framing_error(exc, name, next_line, block_size)
        if poison is not None:
            return poison
        return exc if exact else NeedsExactPass(str(exc))

    try:
        reader = _open_csv(
            stream, column_names, delimiter, on_invalid if exact else None, block_size, encoded
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):  # a header and nothing after it
            return
        raise unframed(exc) from exc
    used = first_failure
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise unframed(exc) from exc
        # The parser has reported every failure up to the end of this batch.
        failed_lines = [f.line for f in failures[used:]]
        used = len(failures)
        lines = _number_rows(next_line, batch.num_rows, failed_lines)
        if batch.num_rows:
            next_line = int(lines[-1]) + 1
        if failed_lines:
            next_line = max(next_line, max(failed_lines) + 1)
        yield LineBatch(batch, lines)


def framing_error(
    exc: pa.ArrowInvalid, name: str, line: int, block_size: int
) -> IngestError | None:
    """A named error for a parser error that no row-by-row pass can get past.

    Rows come in file order, so the line after the last row returned is where the
    trouble starts.
    """
    message = str(exc)
    if "straddl" in message:  # pyarrow: "straddling object straddles two block boundaries"
        return IngestError(
            name,
            f"a line longer than the read block ({block_size:,} bytes), or no line end "
            "before the end of the file",
            "Check the file's line ends (one row per line, LF or CRLF); nothing was stored.",
            line=line,
            kind="line_too_long",
        )
    if "out of sync with chunker" in message or "multiple lines" in message:
        return multiline_error(name, line)
    return None


def multiline_error(name: str, line: int, detail: str = "") -> IngestError:
    return IngestError(
        name,
        "a quoted value runs over a line end (a line break inside quotes, or a quote never "
        "closed)" + (f": {detail}" if detail else ""),
        "CMS files hold one row per line: remove the line breaks inside values (or close "
        "the quote) and land the file again; nothing was stored.",
        line=line,
        kind="multiline_field",
    )


def first_unclosed_quote(stream: BinaryIO, line_limit: int | None = None) -> int | None:
    """The first physical line (header = 1) that leaves a quote open, reading one line
    at a time (each at most `line_limit` bytes): where a quoted value with a line break
    begins."""
    number, line_limit = 0, line_limit or BLOCK_SIZE
    stream = LineCountingReader(stream)  # a readline that stops at `line_limit`
    while line := stream.readline(line_limit):
        number += 1
        if line.count(b'"') % 2:
            return number
    return None


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
