"""Broken variants of a CMS CSV for ingestion tests, each broken in one known way.

`corrupt_file(path_in, path_out, kind, seed)` works on any CMS-layout CSV (or a ZIP
holding one, such as the real sample files) and streams line by line. It returns what it
did (the kind, the data row number counted from 1 after the header, the column), so a
test can assert that the ingestion reports exactly that row and column.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

KINDS = (
    "truncated_line",
    "extra_column",
    "renamed_column",
    "bad_date",
    "wrong_delimiter",
    "non_utf8",
    "duplicate_rows",
)
EXTRA_COLUMN = "EXTRA_COLUMN"
BAD_DATE = b"20081341"  # month 13, day 41: matches YYYYMMDD's shape, is no date
BAD_BYTES = b"\xe9\xff"  # Latin-1 e-acute then 0xFF: never valid UTF-8
DUPLICATE_SHARE = 0.01


@contextmanager
def _open_in(path: Path) -> Iterator[BinaryIO]:
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            if len(names) != 1:
                raise ValueError(f"{path}: expected a ZIP holding one CSV, found {names}")
            with zf.open(names[0]) as fh:
                yield fh
    else:
        with path.open("rb") as fh:
            yield fh


@contextmanager
def _open_out(path: Path, inner_name: str) -> Iterator[BinaryIO]:
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            with zf.open(inner_name, "w", force_zip64=True) as fh:
                yield fh
    else:
        with path.open("wb") as fh:
            yield fh


def _inner_name(path_in: Path, path_out: Path) -> str:
    if path_in.suffix.lower() == ".zip":
        with zipfile.ZipFile(path_in) as zf:
            return zf.namelist()[0]
    return path_out.with_suffix(".csv").name


def _count_rows(path: Path) -> int:
    with _open_in(path) as fh:
        lines = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 22), b""))
    return max(lines - 1, 0)


def _split(line: bytes) -> tuple[list[bytes], bytes]:
    """Fields and the line end (CRLF, LF or none)."""
    end = b"\r\n" if line.endswith(b"\r\n") else b"\n" if line.endswith(b"\n") else b""
    return line[: len(line) - len(end)].split(b","), end


def _header_names(header: bytes) -> list[str]:
    fields, _ = _split(header)
    return [f.decode("utf-8", "replace").strip('"') for f in fields]


def corrupt_file(
    path_in: Path | str, path_out: Path | str, kind: str, seed: int = 0
) -> dict[str, object]:
    """Write a copy of `path_in` broken as `kind`; returns what was broken and where."""
    if kind not in KINDS:
        raise ValueError(f"unknown corruption '{kind}': choose one of {', '.join(KINDS)}")
    path_in, path_out = Path(path_in), Path(path_out)
    rng = np.random.default_rng(seed)
    n_rows = _count_rows(path_in)
    if n_rows == 0:
        raise ValueError(f"{path_in}: no data rows to corrupt")
    target = int(rng.integers(1, n_rows + 1))
    duplicated = set()
    if kind == "duplicate_rows":
        count = max(1, int(n_rows * DUPLICATE_SHARE))
        duplicated = {int(r) + 1 for r in rng.choice(n_rows, size=count, replace=False)}
    report: dict[str, object] = {"kind": kind, "file": path_out.name, "rows_in": n_rows}
    with _open_in(path_in) as src, _open_out(path_out, _inner_name(path_in, path_out)) as dst:
        header = src.readline()
        names = _header_names(header)
        fields, end = _split(header)
        if kind == "extra_column":
            header = b",".join([*fields, f'"{EXTRA_COLUMN}"'.encode()]) + end
            report["column"] = EXTRA_COLUMN
        elif kind == "renamed_column":
            col = int(rng.integers(1, len(names)))  # never the ID column
            report["column"], report["renamed_to"] = names[col], f"{names[col]}_RENAMED"
            fields[col] = f'"{names[col]}_RENAMED"'.encode()
            header = b",".join(fields) + end
        elif kind == "wrong_delimiter":
            header = header.replace(b",", b";")
        dst.write(header)
        date_cols = [i for i, n in enumerate(names) if n.endswith("_DT")]
        if kind == "bad_date" and not date_cols:
            raise ValueError(f"{path_in}: no date (*_DT) column to break")
        row_no = 0
        for line in src:
            row_no += 1
            if kind == "extra_column":
                fields, end = _split(line)
                line = b",".join([*fields, b"X"]) + end
            elif kind == "wrong_delimiter":
                line = line.replace(b",", b";")
            elif kind == "duplicate_rows" and row_no in duplicated:
                dst.write(line if line.endswith(b"\n") else line + b"\r\n")
            elif row_no == target or (
                row_no > target and kind == "bad_date" and "row" not in report
            ):
                line = _break_row(line, kind, names, date_cols, rng, report, row_no)
            dst.write(line)
        if kind == "duplicate_rows":
            report["duplicated_rows"] = sorted(duplicated)
            report["rows_out"] = n_rows + len(duplicated)
    return report


def _break_row(
    line: bytes, kind: str, names: list[str], date_cols: list[int], rng, report: dict, row_no: int
) -> bytes:
    fields, end = _split(line)
    if kind == "truncated_line":
        keep = max(1, len(fields) // 2)
        report.update(row=row_no, fields_kept=keep, fields_expected=len(names))
        return b",".join(fields[:keep]) + end
    if kind == "bad_date":
        filled = [i for i in date_cols if i < len(fields) and fields[i]]
        if not filled:  # try the next row (e.g. an inpatient SEGMENT 2 row)
            return line
        col = filled[int(rng.integers(0, len(filled)))]
        report.update(row=row_no, column=names[col], value=BAD_DATE.decode())
        fields[col] = BAD_DATE
        return b",".join(fields) + end
    if kind == "non_utf8":
        col = int(rng.integers(1, len(fields)))
        report.update(row=row_no, column=names[col])
        fields[col] = fields[col] + BAD_BYTES
        return b",".join(fields) + end
    return line


def read_text(path: Path | str) -> str:
    """A (possibly zipped) CSV's text, for tests and quick looks."""
    with _open_in(Path(path)) as fh:
        return io.TextIOWrapper(fh, encoding="utf-8", newline="").read()
