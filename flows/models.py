"""Flows: train (champion/challenger), batch scoring, and exports of published gold."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from prefect import flow, task

from cms_pipeline.config import Settings, load_settings
from cms_pipeline.dbt_lineage import missing_inputs, read_manifest
from cms_pipeline.dbt_runner import dbt_dir
from cms_pipeline.exports import export_all
from cms_pipeline.ingest.ledger import delivered_tables
from cms_pipeline.lease import writes_lake
from cms_pipeline.publish.publishing import published_build
from cms_pipeline.spark import get_spark
from flows import artifacts
from flows.naming import run_name
from models_ml.registry import champion
from models_ml.usecase import list_use_cases, load_use_case

# models_ml.train, .card and .batch are imported in the tasks that use them: they load
# H2O, scikit-learn, matplotlib and PySpark (seconds), which loading this module (the
# pipeline flow, `prefect deploy`) and a pipeline run that trains nothing do without.


@task(name="train use case", timeout_seconds=6 * 3600)
def train_use_case(lake: str | None, use_case: str, lineage: dict | None = None) -> dict:
    settings = load_settings(lake=lake)
    from models_ml.train import as_dict, train  # see the note at the top

    result = train(settings, use_case, lineage=lineage)
    board = result.leaderboard[:10]
    artifacts.markdown(
        f"leaderboard-{use_case}",
        f"**{use_case}**: {result.decision}\n\n"
        + _markdown_table(board)
        + "\n\nHeld-out: "
        + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if isinstance(v, float)),
    )
    model_card(result)
    return as_dict(result)


def model_card(result) -> None:
    """The version's model card as a Prefect artefact: its key numbers and where the
    full HTML card is (also in MLflow, and `cms-pipeline models card`)."""
    from models_ml.card import CARD_JSON, markdown_summary  # see the note at the top

    if not result.card_path:
        return
    data = json.loads((Path(result.card_path).parent / CARD_JSON).read_text())
    artifacts.markdown(
        f"model-card-{result.use_case}",
        markdown_summary(data, result.card_path),
        description=f"model card of {result.use_case} v{result.model_version}",
    )


@task(name="score use case", retries=1, retry_delay_seconds=30)
def score_use_case(lake: str | None, use_case: str) -> dict:
    settings = load_settings(lake=lake)
    from models_ml.batch import score  # see the note at the top

    result = asdict(score(settings, use_case))
    artifacts.markdown(
        f"score-drift-{use_case}",
        f"**{use_case}**: {result['rows']} rows as of {result['as_of']}, model "
        f"v{result['model_version']}, run {result['run_id']}\n\nPSI of the scores "
        "(below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 major):\n\n"
        + _markdown_table(result["monitoring"]),
        description=f"score drift of {use_case}",
    )
    return result


@task(name="export gold", retries=2, retry_delay_seconds=[10, 60])
def export_gold(lake: str | None) -> dict:
    settings = load_settings(lake=lake)
    report = export_all(settings, get_spark(settings)).to_dict()
    artifacts.exports(report)
    return report


def lineage(settings: Settings, **extra) -> dict:
    """What a training run read: the published gold build, the bronze Delta versions
    behind it, and the dbt manifest that built it."""
    gold = published_build(settings, "gold") or {}
    manifest = dbt_dir(settings) / "target" / "manifest.json"
    return {
        "gold_build": gold.get("build_id"),
        "bronze_versions": gold.get("bronze_versions", {}),
        "dbt_manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest()
        if manifest.exists()
        else None,
        **extra,
    }


def use_cases(settings: Settings) -> list[str]:
    return list_use_cases(settings)


def missing_kinds(settings: Settings, use_case: str) -> list[str]:
    """Bronze tables the use case's feature table is built from that no delivery has
    reached: training or scoring on them would treat absent claims as zero cost."""
    table = load_use_case(settings, use_case).table.rsplit(".", 1)[-1]
    manifest = read_manifest(dbt_dir(settings) / "target" / "manifest.json")
    return sorted(missing_inputs(manifest, table, delivered_tables(settings)))


def skip_reason(settings: Settings, use_case: str) -> str | None:
    """Why the use case cannot run on this lake now, or None."""
    if missing := missing_kinds(settings, use_case):
        return f"its features need {', '.join(missing)}: not delivered yet"
    return None


def has_champion(settings: Settings, use_case: str) -> bool:
    return champion(settings, use_case) is not None


def _markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(empty leaderboard)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


@flow(name="train", log_prints=True, flow_run_name=run_name("train {use_case}"))
@writes_lake("prefect flow train")
def train_flow(use_case: str | None = None, lake: str | None = None) -> dict:
    """Retrain (all use cases by default); a challenger replaces the champion only when
    it beats it on the same held-out data by the configured margin and beyond the
    bootstrap noise of those rows."""
    settings = load_settings(lake=lake)
    names = [use_case] if use_case else use_cases(settings)
    return {
        name: {"skipped": why}
        if (why := skip_reason(settings, name))
        else train_use_case(settings.lake, name, lineage(settings))
        for name in names
    }


@flow(name="score", log_prints=True, flow_run_name=run_name("score {use_case}"))
@writes_lake("prefect flow score")
def score_flow(use_case: str | None = None, lake: str | None = None) -> dict:
    settings = load_settings(lake=lake)
    names = [use_case] if use_case else use_cases(settings)
    return {
        n: {"skipped": why}
        if (why := skip_reason(settings, n))
        else score_use_case(settings.lake, n)
        for n in names
        if has_champion(settings, n)
    }


@flow(name="export", log_prints=True, flow_run_name=run_name("export gold"))
@writes_lake("prefect flow export")
def export_flow(lake: str | None = None) -> dict:
    return export_gold(lake)
