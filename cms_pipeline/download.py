"""Fetch CMS DE-SynPUF ZIP files into the landing area, safely and only once.

- URLs come from `config/downloads.yaml` (per sample, per file kind).
- Several files at once (threads); each retried (tenacity) with exponential backoff and
  jitter on connection errors, timeouts, truncated bodies and 5xx/429 answers, after the
  wait the server asks for in Retry-After when it sends one (404 and other 4xx fail at
  once).
- A partial download lives in `<landing>/.partial/<name>.part` and is resumed with an
  HTTP Range request; the file appears in the landing folder only when complete and a
  valid ZIP (rename, so readers never see half a file).
- `<landing>/_downloads.json` records each file's URL, size and SHA-256: a file in the
  ledger whose size still matches is never fetched again.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from cms_pipeline.atomic import write_text_atomic
from cms_pipeline.config import CONFIG_DIR
from cms_pipeline.synth.layout import FILE_KINDS

DOWNLOADS_FILE = CONFIG_DIR / "downloads.yaml"
LEDGER_NAME = "_downloads.json"
PARTIAL_DIR = ".partial"
# --files groups: the names a user types, and the file kinds they stand for
FILE_GROUPS = {
    "beneficiary": ["bene_2008", "bene_2009", "bene_2010"],
    "inpatient": ["inpatient"],
    "outpatient": ["outpatient"],
    "carrier": ["carrier_a", "carrier_b"],
    "pde": ["pde"],
}
ALL_KINDS = [k.key for k in FILE_KINDS]
BLOCK = 1 << 20
MAX_RETRY_AFTER = 300.0  # seconds: a longer Retry-After is cut to this

ProgressFn = Callable[[str, int, int | None], None]  # file name, bytes so far, total or None


class DownloadError(RuntimeError):
    """A file could not be fetched; `retryable` says whether another try may help."""

    def __init__(self, message: str, retryable: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the server asked us to wait, if it did


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """An HTTP Retry-After header (delay in seconds, or a date) as seconds from `now`."""
    if not value or not value.strip():
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # not a delay nor a date: our own backoff applies
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class ServerOrBackoff:
    """Tenacity's wait: the server's Retry-After when it sent one (at most MAX_RETRY_AFTER),
    else exponential backoff with jitter (threads retrying at once spread out)."""

    def __init__(self, backoff_seconds: float):
        self.backoff = wait_exponential_jitter(multiplier=backoff_seconds, jitter=backoff_seconds)

    def __call__(self, retry_state) -> float:
        asked = getattr(retry_state.outcome.exception(), "retry_after", None)
        return min(asked, MAX_RETRY_AFTER) if asked is not None else self.backoff(retry_state)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff_seconds: float = 2.0
    timeout_seconds: float = 60.0


@dataclass(frozen=True)
class DownloadItem:
    sample: int
    kind: str
    url: str

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DownloadConfig:
    urls: dict[int, dict[str, str]]
    retry: RetryPolicy
    parallel: int


def load_download_config(path: Path | str = DOWNLOADS_FILE) -> DownloadConfig:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: download list not found")
    data = yaml.safe_load(path.read_text()) or {}
    samples = data.get("samples")
    if not isinstance(samples, dict) or not samples:
        raise ValueError(f"{path}: 'samples' must map sample numbers to file kinds and URLs")
    urls: dict[int, dict[str, str]] = {}
    for sample, files in samples.items():
        if not isinstance(files, dict):
            raise ValueError(f"{path}: samples.{sample}: expected a mapping of kind -> URL")
        unknown = set(files) - set(ALL_KINDS)
        if unknown:
            raise ValueError(
                f"{path}: samples.{sample}: unknown file kinds {sorted(unknown)}; "
                f"expected some of {ALL_KINDS}"
            )
        urls[int(sample)] = {str(k): str(v) for k, v in files.items()}
    retry = RetryPolicy(**(data.get("retry") or {}))
    return DownloadConfig(urls=urls, retry=retry, parallel=int(data.get("parallel", 4)))


def parse_samples(text: str) -> list[int]:
    """'1-3,7' -> [1, 2, 3, 7]."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
            out.extend(range(lo, hi + 1))
        else:
            out.append(int(part))
    return sorted(set(out))


def parse_files(text: str | None) -> list[str]:
    """'beneficiary,carrier' -> the file kinds; None -> all eight."""
    if not text:
        return list(ALL_KINDS)
    kinds: list[str] = []
    for name in (x.strip() for x in text.split(",") if x.strip()):
        if name in FILE_GROUPS:
            kinds.extend(FILE_GROUPS[name])
        elif name in ALL_KINDS:
            kinds.append(name)
        else:
            raise ValueError(
                f"unknown file kind '{name}': use {', '.join(FILE_GROUPS)} or {', '.join(ALL_KINDS)}"
            )
    return [k for k in ALL_KINDS if k in kinds]


def select(config: DownloadConfig, samples: list[int], kinds: list[str]) -> list[DownloadItem]:
    items = []
    for sample in samples:
        if sample not in config.urls:
            raise ValueError(f"sample {sample} has no URLs in the download list")
        for kind in kinds:
            url = config.urls[sample].get(kind)
            if url is None:
                raise ValueError(f"sample {sample} has no URL for '{kind}' in the download list")
            items.append(DownloadItem(sample, kind, url))
    return items


class Ledger:
    """`_downloads.json`: what is already in the landing folder, by name, size and SHA-256."""

    def __init__(self, landing: Path):
        self.path = landing / LEDGER_NAME
        self._lock = threading.Lock()
        self.entries: dict[str, dict] = {}
        if self.path.exists():
            try:
                self.entries = json.loads(self.path.read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{self.path}: ledger is not valid JSON ({exc}); fix or delete it "
                    "(files already present are then checked again)"
                ) from exc

    def done(self, name: str, target: Path) -> dict | None:
        entry = self.entries.get(name)
        if entry and target.exists() and target.stat().st_size == entry["size"]:
            return entry
        return None

    def record(self, name: str, entry: dict) -> None:
        with self._lock:
            self.entries[name] = entry
            text = json.dumps(self.entries, indent=2, sort_keys=True) + "\n"
            write_text_atomic(self.path, text)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            h.update(block)
    return h.hexdigest()


def _fetch_once(
    client: httpx.Client, item: DownloadItem, part: Path, progress: ProgressFn | None
) -> None:
    """One request: resume `part` from its size; raises DownloadError if incomplete."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with client.stream("GET", item.url, headers=headers) as resp:
            if resp.status_code == 416 and have:  # part already holds the whole file
                return
            if resp.status_code in (429,) or resp.status_code >= 500:
                asked = retry_after_seconds(resp.headers.get("Retry-After"))
                raise DownloadError(f"{item.url}: HTTP {resp.status_code}", retry_after=asked)
            if resp.status_code >= 400:
                raise DownloadError(f"{item.url}: HTTP {resp.status_code}", retryable=False)
            if resp.status_code == 206:
                mode, start = "ab", have
            else:  # server ignored the range: start again
                mode, start = "wb", 0
            length = resp.headers.get("Content-Length")
            expected = start + int(length) if length is not None else None
            done = start
            with part.open(mode) as fh:
                for block in resp.iter_bytes():  # as it arrives: a cut keeps what came
                    fh.write(block)
                    done += len(block)
                    if progress:
                        progress(item.name, done, expected)
    except httpx.TransportError as exc:  # reset, timeout, body cut short
        raise DownloadError(f"{item.url}: {type(exc).__name__}: {exc}") from exc
    if expected is not None and done < expected:
        raise DownloadError(f"{item.url}: body ended at {done} of {expected} bytes")


def _fetch_and_keep(
    client: httpx.Client,
    item: DownloadItem,
    part: Path,
    target: Path,
    ledger: Ledger,
    progress: ProgressFn | None,
) -> dict:
    """One attempt: fetch (resuming `part`), check it is a ZIP, move it into the landing
    folder and record it in the ledger. Raises DownloadError when another try is needed."""
    _fetch_once(client, item, part, progress)
    if not zipfile.is_zipfile(part):
        part.unlink()  # complete by length but not a ZIP: start over
        raise DownloadError(f"{item.url}: downloaded bytes are not a ZIP file")
    digest = _sha256(part)
    size = part.stat().st_size
    os.replace(part, target)
    ledger.record(item.name, {
        "url": item.url, "sample": item.sample, "kind": item.kind, "size": size,
        "sha256": digest, "downloaded_at": datetime.now(UTC).isoformat(),
    })  # fmt: skip
    return {"file": item.name, "status": "downloaded", "bytes": size, "sha256": digest}


def download_one(
    item: DownloadItem,
    landing: Path,
    ledger: Ledger,
    retry: RetryPolicy,
    progress: ProgressFn | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Fetch one file (unless the ledger has it); never raises, returns its outcome."""
    target = landing / item.name
    entry = ledger.done(item.name, target)
    if entry is not None:
        return {"file": item.name, "status": "skipped", "bytes": entry["size"],
                "sha256": entry["sha256"], "attempts": 0}  # fmt: skip
    part_dir = landing / PARTIAL_DIR
    part_dir.mkdir(parents=True, exist_ok=True)
    part = part_dir / f"{item.name}.part"
    own = client is None
    client = client or httpx.Client(timeout=retry.timeout_seconds, follow_redirects=True)
    retrying = Retrying(
        stop=stop_after_attempt(retry.attempts),
        wait=ServerOrBackoff(retry.backoff_seconds),
        retry=retry_if_exception(lambda exc: isinstance(exc, DownloadError) and exc.retryable),
        sleep=sleep,
        reraise=True,
    )
    attempts, error = 0, None
    try:
        for attempt in retrying:
            with attempt:
                attempts = attempt.retry_state.attempt_number
                outcome = _fetch_and_keep(client, item, part, target, ledger, progress)
                outcome["attempts"] = attempts
        return outcome
    except DownloadError as exc:
        error = exc
    finally:
        if own:
            client.close()
    return {"file": item.name, "status": "failed", "error": str(error), "attempts": attempts,
            "bytes": part.stat().st_size if part.exists() else 0}  # fmt: skip


def download(
    items: list[DownloadItem],
    landing: Path | str,
    retry: RetryPolicy = RetryPolicy(),
    parallel: int = 4,
    progress: ProgressFn | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict]:
    """Fetch all items into `landing`, `parallel` at a time; one outcome per item, in order."""
    landing = Path(landing)
    landing.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(landing)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = [
            pool.submit(download_one, item, landing, ledger, retry, progress, None, sleep)
            for item in items
        ]
        return [f.result() for f in futures]
