"""The beneficiary lookup's index over the per-beneficiary JSON lines export.

The lookup is served by the dashboard's server rather than by the browser reading the
export: Spark writes the profiles as JSON lines in any number of part files, so a big
lake's profiles can be gigabytes. `BeneficiaryIndex` indexes them once (a sorted array of
64-bit id hashes and file offsets: 16 bytes per beneficiary), again only when the part
files change (name, size or mtime), and answers one lookup with one seek and one line read.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading

import numpy as np

from cms_pipeline.storage import filesystem
from cms_pipeline.web.responses import NotFound

_ID_FIELD = re.compile(rb'"desynpuf_id"\s*:\s*"([^"]*)"')


def _id_hash(desynpuf_id: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(desynpuf_id, digest_size=8).digest(), "big") >> 1


class BeneficiaryIndex:
    """Where each beneficiary's line is in the profile part files (see the module doc)."""

    def __init__(self, uri: str):
        self.uri = uri
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._files: list[str] = []
        self._keys = None  # sorted id hashes (numpy int64)
        self._where = None  # per key: file index << 40 | byte offset

    def _parts(self, fs, root: str) -> list[dict]:
        if not fs.exists(root):
            return []
        return sorted(
            (
                info
                for info in fs.ls(root, detail=True)
                if info["type"] == "file" and info["name"].rsplit("/", 1)[-1].startswith("part-")
            ),
            key=lambda info: info["name"],
        )

    def _build(self, fs, parts: list[dict]) -> None:
        keys, where = [], []
        for index, info in enumerate(parts):
            with fs.open(info["name"], "rb") as f:
                offset = 0
                for line in f:
                    found = _ID_FIELD.search(line)
                    if found:
                        keys.append(_id_hash(found.group(1)))
                        where.append(index << 40 | offset)
                    offset += len(line)
        order = np.argsort(np.array(keys, dtype=np.int64), kind="stable")
        self._keys = np.array(keys, dtype=np.int64)[order]
        self._where = np.array(where, dtype=np.int64)[order]
        self._files = [info["name"] for info in parts]

    def available(self) -> bool:
        fs, root = filesystem(self.uri)
        return bool(self._parts(fs, root))

    def lookup(self, desynpuf_id: str) -> dict | None:
        """The beneficiary's profile (dim row and years), or None when not in the export.
        Raises NotFound when there is no export at all."""
        fs, root = filesystem(self.uri)
        with self._lock:
            parts = self._parts(fs, root)
            if not parts:
                raise NotFound(
                    f"no per-beneficiary export at {self.uri}", "cms-pipeline run (or export)"
                )
            stamp = tuple((p["name"], p.get("size"), p.get("mtime")) for p in parts)
            if stamp != self._stamp:
                self._build(fs, parts)
                self._stamp = stamp
            keys, where, files = self._keys, self._where, self._files
        wanted = desynpuf_id.encode()
        key = _id_hash(wanted)
        first = int(np.searchsorted(keys, key, side="left"))
        for position in range(first, len(keys)):
            if keys[position] != key:
                break
            packed = int(where[position])
            with fs.open(files[packed >> 40], "rb") as f:
                f.seek(packed & ((1 << 40) - 1))
                line = f.readline()
            found = _ID_FIELD.search(line)
            if found and found.group(1) == wanted:  # a hash collision is not a match
                return json.loads(line)
        return None
