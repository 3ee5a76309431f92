"""What the dashboard's server answers, without the HTTP plumbing (`server.py`):

    /                                the dashboard (static/index.html)
    /static/<file>                   its scripts and styles
    /data/web/<path>                 the web JSON exports (LAKE/exports/web, config/storage.yaml)
    /data/ml/<path>                  the batch-scoring exports (METADATA/exports/ml)
    /api/status                      which exports exist, which are missing and how to make them
    /api/beneficiary/<DESYNPUF_ID>   one line of the per-beneficiary JSON (`beneficiaries.py`)
    /api/scores/<use_case>           the latest scores of a use case as a histogram
    /api/models/<use_case>           its champion's test metrics and model card (models_ml.card)
    /api/models/<use_case>/card.html the champion's model card

Paths are cleaned before use (`paths.py`): nothing outside the export folders and
`static/` is served. A missing export answers 404 with a JSON body that names it and the
command that makes it (`responses.NotFound`).
"""

from __future__ import annotations

import json
import mimetypes
import re
import tempfile
import threading
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cms_pipeline.config import Settings
from cms_pipeline.exports import export_config, exported_build
from cms_pipeline.storage import filesystem, is_local, join
from cms_pipeline.web.beneficiaries import BeneficiaryIndex
from cms_pipeline.web.paths import clean_relative, inside
from cms_pipeline.web.responses import CARD_POLICY, NotFound, Response, json_response

STATIC_DIR = Path(__file__).parent / "static"
HISTOGRAM_BINS = 20
USE_CASE_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,100}$")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def histogram(scores: list[float], bins: int = HISTOGRAM_BINS) -> list[dict]:
    """Counts of `scores` in `bins` equal bins over [0, 1] (1.0 in the last one). Pure."""
    counts = [0] * bins
    for score in scores:
        counts[min(max(int(score * bins), 0), bins - 1)] += 1
    return [{"low": i / bins, "high": (i + 1) / bins, "count": c} for i, c in enumerate(counts)]


class Dashboard:
    """What the server answers, without the HTTP plumbing (unit-testable)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        config = export_config(settings)["web"]
        self.config = config
        self.web_uri = settings.lake_path(config["path"])
        self.ml_dir = settings.metadata_path("exports", "ml")
        self.tables = list(config.get("tables", []))
        self.table_folder = config.get("table_documents", "tables")
        self.beneficiaries = BeneficiaryIndex(join(self.web_uri, config["beneficiary_profiles"]))
        self._score_cache: dict[str, tuple] = {}
        self._model_cache: dict[str, tuple] = {}
        self._card_folder = tempfile.TemporaryDirectory(prefix="cms-web-cards-")
        self._cards = Path(self._card_folder.name)
        self._card_paths: dict[tuple[str, str], Path] = {}
        self._lock = threading.Lock()

    # -- commands a user runs to make what is missing
    def _make(self, what: str = "exports") -> str:
        lake = f" --lake {self.settings.lake}"
        if what == "predictions":
            return f"cms-pipeline run{lake} (trains where needed and scores), or cms-pipeline score{lake}"
        return (
            f"cms-pipeline run{lake} (or, with gold already published, cms-pipeline export{lake})"
        )

    # -- files
    def _web_file(self, relative: str) -> bytes:
        if is_local(self.web_uri):
            path = inside(Path(self.web_uri), relative)
            if path is None:
                raise NotFound(f"no export {relative} under {self.web_uri}", self._make())
            return path.read_bytes()
        fs, root = filesystem(self.web_uri)
        target = f"{root.rstrip('/')}/{relative}"
        if not fs.isfile(target):
            raise NotFound(f"no export {relative} under {self.web_uri}", self._make())
        return fs.cat_file(target)

    def _ml_file(self, relative: str) -> Path:
        path = inside(self.ml_dir, relative)
        if path is None:
            raise NotFound(
                f"no scoring export {relative} under {self.ml_dir}", self._make("predictions")
            )
        return path

    def _documents(self, folder: str) -> list[str]:
        fs, root = filesystem(join(self.web_uri, folder))
        if not fs.exists(root):
            return []
        names = [info.rsplit("/", 1)[-1] for info in fs.ls(root, detail=False)]
        return sorted(n.removesuffix(".json") for n in names if n.endswith(".json"))

    def use_cases(self) -> list[str]:
        if not self.ml_dir.is_dir():
            return []
        return sorted(
            p.name.removeprefix("predictions_").removesuffix(".json")
            for p in self.ml_dir.glob("predictions_*.json")
        )

    # -- API
    def status(self) -> dict:
        tables = set(self._documents(self.table_folder))
        exports = {
            "years": self._documents(self.config["year_summaries"]),
            "states": self._documents(self.config["state_summaries"]),
            "tables": {name: name in tables for name in self.tables},
            "beneficiaries": self.beneficiaries.available(),
            "predictions": self.use_cases(),
        }
        missing = []
        for key, what in (
            ("years", "year summaries"),
            ("states", "state summaries"),
            ("beneficiaries", "per-beneficiary profiles"),
        ):
            if not exports[key]:
                missing.append({"export": what, "make": self._make()})
        for name, present in exports["tables"].items():
            if not present:
                missing.append({"export": f"table {name}", "make": self._make()})
        if not exports["predictions"]:
            missing.append({"export": "model scores", "make": self._make("predictions")})
        return {
            "lake": self.settings.lake,
            "exports_at": self.web_uri,
            "exported_build": exported_build(self.settings),
            "exports": exports,
            "missing": missing,
        }

    def scores(self, use_case: str) -> dict:
        path = self._ml_file(f"predictions_{use_case}.json")
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._score_cache.get(use_case)
        if cached and cached[0] == stamp:
            return cached[1]
        doc = json.loads(path.read_bytes())
        scores = [float(p["score"]) for p in doc["predictions"] if p.get("score") is not None]
        summary = {
            **{k: v for k, v in doc.items() if k != "predictions"},
            "scored_rows": len(doc["predictions"]),
            "positive_labels": sum(1 for p in doc["predictions"] if p.get("predicted_label") == 1),
            "mean_score": sum(scores) / len(scores) if scores else None,
            "histogram": histogram(scores),
        }
        with self._lock:
            self._score_cache[use_case] = (stamp, summary)
        return summary

    def model(self, use_case: str) -> dict:
        """The champion's version and test metrics from the registry, and its model card
        (`card: null` for a version without one). Read again when the registry changes."""
        # inside: models_ml builds on cms_pipeline, so this import points up
        # (docs/architecture.md, "Checking the import direction")
        from models_ml import registry

        store = registry.local_store(self.settings)
        if store is not None and not store.exists():
            raise NotFound(f"no model registry at {store}", self._make("predictions"))
        stamp = registry.store_stamp(store)
        with self._lock:
            cached = self._model_cache.get(use_case)
        if cached and cached[0] == stamp and stamp is not None:
            return cached[1]
        try:
            shown = registry.show_model(self.settings, use_case)
        except registry.RegistryError as exc:
            raise NotFound(str(exc), f"cms-pipeline train {use_case}") from exc
        champion = next((v for v in shown["versions"] if v["version"] == shown["champion"]), None)
        body = {
            "use_case": use_case,
            "champion": shown["champion"],
            "metrics": champion["metrics"] if champion else {},
            "created": champion["created"] if champion else None,
            "test_rows": champion["test_rows"] if champion else None,
            "card": self._card(registry, use_case, shown["champion"]),
        }
        with self._lock:
            self._model_cache[use_case] = (stamp, body)
        return body

    def _card(self, registry, use_case: str, version) -> dict | None:
        """The champion's model card (models_ml.card: card.json and card.html), copied from
        the registry into this server's own temporary folder (the lake is only read); None
        for a version trained before cards were written."""
        if version is None:
            return None
        try:
            files = registry.download_card(self.settings, use_case, version, self._cards)
        except registry.RegistryError:
            return None
        data = json.loads(files["json"].read_text())
        self._card_paths[use_case, str(version)] = files["html"]
        return {
            "html": f"/api/models/{use_case}/card.html",
            "version": str(version),
            "description": data.get("description"),
            "model": data.get("model"),
        }

    def card_html(self, use_case: str) -> bytes:
        card = self.model(use_case)["card"]
        if not card:
            raise NotFound(
                f"no model card for {use_case}'s champion (trained before cards were written)",
                f"cms-pipeline train {use_case}",
            )
        return self._card_paths[use_case, card["version"]].read_bytes()

    # -- routing
    def handle(self, raw_path: str) -> Response:
        path = urlsplit(raw_path).path
        try:
            return self._route(path)
        except NotFound as exc:
            return json_response(exc.body(), HTTPStatus.NOT_FOUND)

    def _route(self, path: str) -> Response:
        if path in ("/", "/index.html"):
            return self._static("index.html")
        for prefix, serve in (
            ("/static/", self._static),
            ("/data/web/", self._data_web),
            ("/data/ml/", self._data_ml),
        ):
            if path.startswith(prefix):
                relative = clean_relative(path[len(prefix) :])
                if relative is None:
                    raise NotFound(f"not served: {path}")
                return serve(relative)
        if path == "/api/status":
            return json_response(self.status())
        parts = path.split("/")
        if len(parts) == 4 and parts[:3] == ["", "api", "beneficiary"]:
            desynpuf_id = unquote(parts[3]).strip()
            if not ID_PATTERN.match(desynpuf_id):
                return json_response({"error": "not a DESYNPUF_ID"}, HTTPStatus.BAD_REQUEST)
            profile = self.beneficiaries.lookup(desynpuf_id)
            if profile is None:
                raise NotFound(f"no beneficiary {desynpuf_id} in the export")
            return json_response(profile)
        if len(parts) in (4, 5) and parts[1] == "api" and parts[2] in ("scores", "models"):
            use_case = parts[3]
            if not USE_CASE_PATTERN.match(use_case):
                raise NotFound(f"no use case {use_case}")
            if parts[2] == "scores" and len(parts) == 4:
                return json_response(self.scores(use_case))
            if len(parts) == 4:
                return json_response(self.model(use_case))
            if parts[4] == "card.html":
                return Response(HTTPStatus.OK, self.card_html(use_case), "text/html", CARD_POLICY)
        raise NotFound(f"not served: {path}")

    def _static(self, relative: str) -> Response:
        target = inside(STATIC_DIR, relative)
        if target is None:
            raise NotFound(f"no dashboard file {relative}")
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return Response(HTTPStatus.OK, target.read_bytes(), kind)

    def _data_web(self, relative: str) -> Response:
        kind = "application/json" if relative.endswith(".json") else "application/octet-stream"
        return Response(HTTPStatus.OK, self._web_file(relative), kind)

    def _data_ml(self, relative: str) -> Response:
        return Response(HTTPStatus.OK, self._ml_file(relative).read_bytes())
