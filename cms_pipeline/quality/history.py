"""Trends over stored gate runs: one summary per run, and each check's values over runs."""

from __future__ import annotations

from cms_pipeline.config import Settings
from cms_pipeline.quality import store


def summarize_runs(rows: list[dict], last: int = 10) -> list[dict]:
    """Newest first: time, layer, schema, verdict and outcome counts of each run."""
    runs: dict[str, dict] = {}
    for r in rows:
        run = runs.setdefault(
            r["run_id"],
            {
                "checked_at": r["checked_at"],
                "run_id": r["run_id"],
                "layer": r["layer"],
                "schema": r["schema"],
                "batch_id": r["batch_id"],
                "passed": r["gate_passed"],
                "pass": 0,
                "warn": 0,
                "fail": 0,
                "error": 0,
            },
        )
        run[r["outcome"]] = run.get(r["outcome"], 0) + 1
    ordered = sorted(runs.values(), key=lambda x: x["checked_at"], reverse=True)
    return ordered[:last]


def check_trends(rows: list[dict], run_ids: list[str]) -> list[dict]:
    """Per (layer, table, check): its outcome and value in each of `run_ids` (oldest first)."""
    order = list(reversed(run_ids))
    trends: dict[tuple, dict] = {}
    for r in rows:
        if r["run_id"] not in run_ids:
            continue
        key = (r["layer"], r["table"], r["check"])
        t = trends.setdefault(key, {"layer": key[0], "table": key[1], "check": key[2], "runs": {}})
        t["runs"][r["run_id"]] = {"outcome": r["outcome"], "value": r["value"]}
    out = []
    for t in trends.values():
        t["series"] = [t["runs"].get(run) for run in order]
        del t["runs"]
        out.append(t)
    return sorted(out, key=lambda t: (t["layer"], t["table"], t["check"]))


def history(settings: Settings, layer: str | None = None, last: int = 10) -> dict:
    rows = store.read_results(settings, layer).to_pylist()
    runs = summarize_runs(rows, last)
    return {"runs": runs, "checks": check_trends(rows, [r["run_id"] for r in runs])}
