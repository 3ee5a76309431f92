"""Find the CMS deliveries in a landing area (local folder or object-store URI)."""

from __future__ import annotations

from dataclasses import dataclass

from cms_pipeline.config import Settings, SourceContract
from cms_pipeline.storage import filesystem, is_local


@dataclass(frozen=True)
class Delivery:
    uri: str  # full path or URI of the delivered file
    relative: str  # path below the landing root, kept as lineage
    contract: SourceContract
    attributes: dict[str, str]  # sample, year, part from the file name

    @property
    def name(self) -> str:
        return self.relative.rsplit("/", 1)[-1]


def discover(settings: Settings, source: str) -> tuple[list[Delivery], list[str]]:
    """Deliveries matching a contract, and the files no contract matches."""
    fs, root = filesystem(source)
    prefix = "" if is_local(source) else source.split("://", 1)[0] + "://"
    if fs.isfile(root):
        paths, base = [root], root.rsplit("/", 1)[0]
    else:
        paths, base = sorted(fs.find(root)), root.rstrip("/")
    found, ignored = [], []
    for path in paths:
        relative = path[len(base) :].lstrip("/")
        name = relative.rsplit("/", 1)[-1]
        if name.startswith(".") or name.endswith((".part", ".md", ".json")):
            continue
        match = settings.contract_for(name)
        if match is None:
            ignored.append(relative)
            continue
        contract, attrs = match
        found.append(Delivery(prefix + path, relative, contract, attrs))
    return found, ignored
