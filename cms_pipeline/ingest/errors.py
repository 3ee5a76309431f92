"""Errors that speak to the user: which file, which line, which column, what to do."""

from __future__ import annotations

# Stable names of what can be wrong with a whole file (IngestError.kind), so summaries
# can count them. "unsettled" is the one that is not final: the file is read next run.
KINDS = {
    "empty": "no header, or a header and no data rows",
    "header_mismatch": "header unreadable or different from the contract",
    "no_line_end": "no line end in the first line: not line-delimited text",
    "line_too_long": "a line longer than the read block",
    "multiline_field": "a quoted value holding line breaks (or an unclosed quote)",
    "row_count_mismatch": "the parser's rows differ from the file's lines",
    "zip_unreadable": "not a readable ZIP archive",
    "zip_members": "a ZIP not holding exactly one CSV",
    "zip_bomb": "a ZIP whose expanded size or expansion ratio is absurd",
    "zip_crc": "a ZIP member whose bytes fail their CRC-32",
    "zip_corrupt": "a ZIP member whose compressed bytes cannot be expanded",
    "unsettled": "the file was still changing (being copied): read again next run",
    "invalid": "any other refusal",
}


class IngestError(Exception):
    def __init__(
        self,
        file: str,
        problem: str,
        hint: str,
        line: int | None = None,
        column: str | None = None,
        kind: str = "invalid",
    ):
        assert kind in KINDS, kind
        self.file, self.problem, self.hint, self.line, self.column, self.kind = (
            file,
            problem,
            hint,
            line,
            column,
            kind,
        )
        where = file
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {problem}. {hint}")

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "problem": self.problem,
            "hint": self.hint,
        }
