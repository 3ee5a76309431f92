"""The models the REST API serves: each use case's champion, followed in the registry.

A background thread (models_ml.api) calls `Champions.refresh_if_changed`: when the
champion changes, the new MOJO is loaded and swapped in. A champion that cannot be
loaded (artefact missing or corrupt) never replaces a working model: the API keeps
serving the last good version (on start, the most recent earlier champion that loads)
and /readyz says which and why; each use case loads on its own, so one bad model never
stops the others. The registry is asked only when its SQLite file changed or
`FULL_CHECK_SECONDS` passed (a tracking server: every time).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Literal

from fastapi import HTTPException
from pydantic import BaseModel

from cms_pipeline.config import Settings
from models_ml import registry
from models_ml.api_guards import MAX_RECORDS
from models_ml.schema import request_model
from models_ml.serving import LoadedModel, earlier_champions, load_version, why
from models_ml.usecase import list_use_cases

FULL_CHECK_SECONDS = 60.0  # ask the registry at least this often, changed file or not
RETRY_FAILED_SECONDS = 60.0  # a champion that failed to load is tried again after this
log = logging.getLogger("models_ml.api")  # the API's records, wherever in it they start


@dataclass
class Served:
    model: LoadedModel
    request: type[BaseModel]


@dataclass(frozen=True)
class Readiness:
    """What one use case serves: its champion, or the last good version and why."""

    status: Literal["ok", "degraded", "unavailable"]
    champion: str | None  # the registry's champion version
    served: str | None  # the version answering requests
    reason: str | None = None


class Champions:
    """The loaded model of each use case, swapped atomically on reload, and its readiness.

    Both maps are replaced, never changed in place: a request iterating one while the
    reload thread installs a model sees the old map or the new one, whole."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.models: dict[str, Served] = {}
        self.readiness: dict[str, Readiness] = {}
        self._lock = threading.Lock()
        self._store = registry.local_store(settings)
        self._seen: object = None
        self._checked_at = float("-inf")
        self._failed: dict[tuple[str, str], tuple[float, str]] = {}  # (uc, version) -> when, why

    def refresh_if_changed(self) -> None:
        stamp = registry.store_stamp(self._store)
        fresh = time.monotonic() - self._checked_at < FULL_CHECK_SECONDS
        if stamp is not None and stamp == self._seen and fresh:
            return
        # the stamp is taken before asking: a write during the query is seen next time
        self._seen, self._checked_at = stamp, time.monotonic()
        self.refresh()

    def refresh(self) -> None:
        for name in list_use_cases(self.settings):
            try:
                state = self._refresh_one(name)
            except Exception as exc:  # noqa: BLE001 - one use case never stops the others
                log.exception("checking %s failed; keeping what it serves", name)
                state = self._state(name, None, f"registry check failed: {why(exc)}")
            self.readiness = {**self.readiness, name: state}

    def _refresh_one(self, name: str) -> Readiness:
        champion = registry.champion(self.settings, name)
        if champion is None:
            return self._state(name, None, "no champion in the registry (or it is unreachable)")
        want = str(champion.version)
        current = self.models.get(name)
        if current is not None and current.model.version == want:
            return Readiness("ok", want, want)
        failed = self._failed.get((name, want))
        if failed is not None and time.monotonic() - failed[0] < RETRY_FAILED_SECONDS:
            return self._state(name, want, failed[1])
        try:
            self._install(name, load_version(self.settings, name, want))
            self._failed.pop((name, want), None)
            return Readiness("ok", want, want)
        except Exception as exc:  # noqa: BLE001 - a bad artefact must not stop serving
            reason = f"champion version {want} cannot be loaded: {why(exc)}"
            log.error("%s: %s; fix or re-promote it (`cms-pipeline models promote`)", name, reason)
            self._failed[(name, want)] = (time.monotonic(), reason)
        if current is None:  # nothing served yet (start): the most recent earlier champion
            for version in earlier_champions(self.settings, name, want):
                try:
                    self._install(name, load_version(self.settings, name, version))
                    break
                except Exception as exc:  # noqa: BLE001
                    reason += f"; earlier champion {version} cannot be loaded either: {why(exc)}"
        return self._state(name, want, reason)

    def _install(self, name: str, loaded: LoadedModel) -> None:
        with self._lock:
            served = Served(loaded, request_model(name, loaded.features, MAX_RECORDS))
            self.models = {**self.models, name: served}
        log.info("serving %s version %s", name, loaded.version)

    def _state(self, name: str, champion: str | None, reason: str) -> Readiness:
        served = self.models.get(name)
        if served is None:
            return Readiness("unavailable", champion, None, reason)
        return Readiness("degraded", champion, served.model.version, reason)

    def get(self, use_case: str) -> Served:
        served = self.models.get(use_case)
        if served is None:
            raise HTTPException(
                404,
                f"no model served for '{use_case}' (served: {sorted(self.models)}; "
                "see /readyz for why)",
            )
        return served
