"""Find the CMS deliveries in a landing area (local folder or object-store URI)."""

from __future__ import annotations

from dataclasses import dataclass

from cms_pipeline.config import Settings, SourceContract
from cms_pipeline.ingest.settle import FileState, state_from_info
from cms_pipeline.storage import filesystem, is_local


@dataclass(frozen=True)
class Delivery:
    uri: str  # full path or URI of the delivered file
    relative: str  # path below the landing root, kept as lineage
    contract: SourceContract
    attributes: dict[str, str]  # sample, year, part from the file name
    found_as: FileState | None = None  # size and mtime when discovered (settle check)

    @property
    def name(self) -> str:
        return self.relative.rsplit("/", 1)[-1]


def discover(settings: Settings, source: str) -> tuple[list[Delivery], list[str]]:
    """Deliveries matching a contract, and the files no contract matches."""
    fs, root = filesystem(source)
    prefix = "" if is_local(source) else source.split("://", 1)[0] + "://"
    if fs.isfile(root):
        infos, base = {root: fs.info(root)}, root.rsplit("/", 1)[0]
    else:
        infos, base = fs.find(root, detail=True), root.rstrip("/")
    found, ignored = [], []
    for path in sorted(infos):
        relative = path[len(base) :].lstrip("/")
        name = relative.rsplit("/", 1)[-1]
        if name.startswith(".") or name.endswith((".part", ".md", ".json")):
            continue
        match = settings.contract_for(name)
        if match is None:
            ignored.append(relative)
            continue
        contract, attrs = match
        state = state_from_info(infos[path], local=not prefix)
        found.append(Delivery(prefix + path, relative, contract, attrs, state))
    return found, ignored
