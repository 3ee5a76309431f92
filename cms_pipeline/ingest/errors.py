"""Errors that speak to the user: which file, which line, which column, what to do."""

from __future__ import annotations


class IngestError(Exception):
    def __init__(
        self,
        file: str,
        problem: str,
        hint: str,
        line: int | None = None,
        column: str | None = None,
    ):
        self.file, self.problem, self.hint, self.line, self.column = (
            file,
            problem,
            hint,
            line,
            column,
        )
        where = file
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {problem}. {hint}")

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "problem": self.problem,
            "hint": self.hint,
        }
