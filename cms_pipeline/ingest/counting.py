"""A read-only stream wrapper that counts line ends, as an independent row count."""

from __future__ import annotations

import io

_CHUNK = 64 << 10


class LineCountingReader(io.RawIOBase):
    """Counts the line ends of the bytes handed out; its readline(size) reads at most
    `size` bytes looking for a line end, whatever the stream below (fsspec's object-store
    files read on to the line end, however far)."""

    def __init__(self, raw):
        self._raw = raw
        self._pending = b""  # read past a line end by readline, handed out first
        self.newlines = 0
        self.bytes = 0
        self.last_byte = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def read(self, size: int = -1) -> bytes:
        data = self._take(size)
        self._count(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        chunks, total = [], 0
        while size < 0 or total < size:
            data = self._take(_CHUNK if size < 0 else min(_CHUNK, size - total))
            if not data:
                break
            end = data.find(b"\n") + 1
            if end:
                self._pending = data[end:] + self._pending
                chunks.append(data[:end])
                break
            chunks.append(data)
            total += len(data)
        line = b"".join(chunks)
        self._count(line)
        return line

    def _take(self, size: int) -> bytes:
        """Up to `size` bytes (all when negative): the pending ones, then the stream's."""
        if not self._pending:
            return self._raw.read(size)
        if 0 <= size <= len(self._pending):
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        data, self._pending = self._pending, b""
        return data + self._raw.read(-1 if size < 0 else size - len(data))

    def _count(self, data: bytes) -> None:
        if data:
            self.newlines += data.count(b"\n")
            self.bytes += len(data)
            self.last_byte = data[-1:]

    @property
    def lines(self) -> int:
        """Physical lines read, counting a last line without a line end."""
        return self.newlines + (1 if self.last_byte not in (b"", b"\n") else 0)
