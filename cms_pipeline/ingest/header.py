"""Compare a file's header row with its contract: delimiter, encoding, columns."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

DELIMITERS = [",", "|", "\t", ";"]


@dataclass(frozen=True)
class HeaderCheck:
    names: list[str]
    expected: list[str]
    delimiter_found: str
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)  # contract name -> file name
    reordered: bool = False
    problem: str | None = None  # unreadable header (encoding, delimiter): never evolvable

    @property
    def matches(self) -> bool:
        return self.problem is None and self.names == self.expected

    def describe(self) -> str:
        if self.problem:
            return self.problem
        parts = []
        if self.renamed:
            parts.append("renamed " + ", ".join(f"{a} -> {b}" for a, b in self.renamed.items()))
        if self.missing:
            parts.append(f"missing {_few(self.missing)}")
        if self.extra:
            parts.append(f"extra {_few(self.extra)}")
        if self.reordered:
            parts.append("columns in a different order than the contract")
        return "; ".join(parts) or "header matches"


def _few(names: list[str], shown: int = 10) -> str:
    """A list of column names, cut short when long (a header that is a whole file)."""
    if len(names) <= shown:
        return str(names)
    return f"{names[:shown]} and {len(names) - shown:,} more"


def check_header(raw: bytes, expected: list[str], delimiter: str, encoding: str) -> HeaderCheck:
    raw = raw.rstrip(b"\r\n")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        return HeaderCheck(
            [],
            expected,
            delimiter,
            problem=f"header is not valid {encoding} ({exc.reason} at byte {exc.start})",
        )
    if not text.strip():
        return HeaderCheck([], expected, delimiter, problem="the file is empty (no header row)")
    counts = {d: text.count(d) for d in DELIMITERS}
    if counts.get(delimiter, 0) == 0 and len(expected) > 1:
        found = max(counts, key=counts.get)
        if counts[found] > 0:
            return HeaderCheck(
                [],
                expected,
                found,
                problem=f"the delimiter is {found!r}, the contract expects {delimiter!r}",
            )
    names = [n.strip() for n in next(csv.reader([text], delimiter=delimiter))]
    return _compare(names, expected, delimiter)


def _compare(names: list[str], expected: list[str], delimiter: str) -> HeaderCheck:
    missing = [n for n in expected if n not in names]
    extra = [n for n in names if n not in expected]
    renamed: dict[str, str] = {}
    # A column in the contract's position whose name changed: reported as a rename.
    if len(names) == len(expected):
        for want, got in zip(expected, names, strict=True):
            if want != got and want in missing and got in extra:
                renamed[want] = got
        missing = [n for n in missing if n not in renamed]
        extra = [n for n in extra if n not in renamed.values()]
    common = [n for n in names if n in expected]
    reordered = common != [n for n in expected if n in names]
    return HeaderCheck(names, expected, delimiter, missing, extra, renamed, reordered)
