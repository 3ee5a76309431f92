"""A read-only stream wrapper that counts line ends, as an independent row count."""

from __future__ import annotations

import io


class LineCountingReader(io.RawIOBase):
    def __init__(self, raw):
        self._raw = raw
        self.newlines = 0
        self.bytes = 0
        self.last_byte = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._count(data)
        return n

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._count(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self._raw.readline() if size == -1 else self._raw.readline(size)
        self._count(data)
        return data

    def _count(self, data: bytes) -> None:
        if data:
            self.newlines += data.count(b"\n")
            self.bytes += len(data)
            self.last_byte = data[-1:]

    @property
    def lines(self) -> int:
        """Physical lines read, counting a last line without a line end."""
        return self.newlines + (1 if self.last_byte not in (b"", b"\n") else 0)
