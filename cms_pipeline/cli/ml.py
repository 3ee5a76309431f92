"""`cms-pipeline train | models | score | serve`: H2O AutoML use cases and their models."""

# Its commands import what they use inside the command, so that `cms-pipeline --help` (about
# 0.45 s) stays fast: at the top they would add about 1.3 s (MLflow, H2O, scikit-learn and
# the REST API's FastAPI; measured 2026-12-08, 2 cores).

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cms_pipeline.cli.common import (
    JsonOption,
    LakeOption,
    ProfileOption,
    console,
    emit,
    out,
    settings_for,
    table,
    writes_lake,
)
from cms_pipeline.config import ConfigError

models_app = typer.Typer(
    help="Registered models: list, show, promote, roll back.", no_args_is_help=True
)

UseCaseArg = Annotated[str, typer.Argument(help="Use case = a file `config/ml/<USE_CASE>.yaml`")]


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]{type(exc).__name__}[/red]: {exc}")
    return typer.Exit(1)


def _registry_errors():
    from models_ml.data import FeatureTableError
    from models_ml.registry import RegistryError

    return (ConfigError, RegistryError, FeatureTableError)


@writes_lake("train")
def train(
    use_case: UseCaseArg,
    lineage: Annotated[
        str | None,
        typer.Option(help="JSON object with input versions to record (e.g. bronze Delta versions)"),
    ] = None,
    no_promote: Annotated[
        bool, typer.Option("--no-promote", help="Register the version but never promote it")
    ] = False,
    lake: LakeOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train USE_CASE with H2O AutoML on its gold feature table, log to MLflow, register,
    write its model card, and promote it if it beats the champion on the same test rows
    by the configured margin and beyond bootstrap noise."""
    from models_ml.train import as_dict
    from models_ml.train import train as run_train

    settings = settings_for(lake, profile)
    try:
        result = run_train(
            settings,
            use_case,
            json.loads(lineage) if lineage else None,
            promote_if_better=not no_promote,
        )
    except _registry_errors() as exc:
        raise _fail(exc) from exc
    summary = as_dict(result)

    def render(s):
        out.print(
            f"[bold]{s['use_case']}[/bold] version {s['model_version']} "
            f"(leader {s['leader']}), run {s['run_id']}"
        )
        out.print(table("Held-out metrics", [s["metrics"]]))  # rounded by table()
        out.print(table("Leaderboard (cross-validation)", s["leaderboard"]))
        out.print(f"Promotion: {s['decision']}; champion is version {s['champion_version']}")

    emit(summary, as_json, render)


@models_app.command("list")
def models_list(
    lake: LakeOption = None, profile: ProfileOption = None, as_json: JsonOption = False
) -> None:
    """Every use case's model: versions, champion and its held-out metrics."""
    from models_ml.registry import list_models

    rows = list_models(settings_for(lake, profile))
    flat = [
        {
            **{k: v for k, v in r.items() if k != "champion_metrics"},
            "test_auc": _fmt(r["champion_metrics"].get("test_auc")),
            "test_aucpr": _fmt(r["champion_metrics"].get("test_aucpr")),
        }
        for r in rows
    ]
    emit(rows, as_json, lambda _: out.print(table("Models", flat)))


@models_app.command("show")
def models_show(
    use_case: UseCaseArg,
    lake: LakeOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """All versions of USE_CASE with metrics, training data and lineage."""
    from models_ml.registry import show_model

    try:
        info = show_model(settings_for(lake, profile), use_case)
    except _registry_errors() as exc:
        raise _fail(exc) from exc
    rows = [
        {
            "version": v["version"],
            "champion": "yes" if v["version"] == info["champion"] else "",
            "created": v["created"],
            "test_auc": _fmt(v["metrics"].get("test_auc")),
            "test_aucpr": _fmt(v["metrics"].get("test_aucpr")),
            "train_rows": v["train_rows"],
            "test_rows": v["test_rows"],
            "leader": v["leader"],
            "git": (v["git_commit"] or "")[:12],
        }
        for v in info["versions"]
    ]
    emit(
        info,
        as_json,
        lambda _: out.print(
            table(f"{use_case} (champion history {info['champion_history']})", rows)
        ),
    )


@models_app.command("card")
def models_card(
    use_case: UseCaseArg,
    version: Annotated[
        str | None, typer.Option(help="Model version (default: the champion)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Copy card.html to this file", dir_okay=False)
    ] = None,
    lake: LakeOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """The model card of a version of USE_CASE: cohort, data, metrics with bootstrap
    intervals, calibration, subgroups, features. Prints the path of card.html (--json:
    the card's data)."""
    import shutil

    from models_ml.registry import RegistryError, champion, download_card

    settings = settings_for(lake, profile)
    try:
        if version is None:
            champ = champion(settings, use_case)
            if champ is None:
                raise RegistryError(
                    f"'{use_case}' has no champion; name a version: --version N "
                    f"(see `cms-pipeline models show {use_case}`)"
                )
            version = str(champ.version)
        paths = download_card(settings, use_case, version, settings.metadata_path("cards"))
    except _registry_errors() as exc:
        raise _fail(exc) from exc
    html = paths["html"]
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        html = Path(shutil.copyfile(html, output))
    data = json.loads(paths["json"].read_text())
    emit(
        data,
        as_json,
        lambda d: out.print(f"{use_case} v{d['version']}: model card {html.resolve()}"),
    )


@models_app.command("promote")
@writes_lake("models promote")
def models_promote(
    use_case: UseCaseArg,
    version: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option(help="Why (recorded)")] = "manual",
    lake: LakeOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make VERSION the champion of USE_CASE (manual override of the margin rule)."""
    from models_ml.registry import promote

    try:
        result = promote(settings_for(lake, profile), use_case, version, reason)
    except _registry_errors() as exc:
        raise _fail(exc) from exc
    emit(
        result,
        as_json,
        lambda r: out.print(
            f"{use_case}: champion is now version {r['champion']} (was {r['previous']})"
        ),
    )


@models_app.command("rollback")
@writes_lake("models rollback")
def models_rollback(
    use_case: UseCaseArg,
    lake: LakeOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore the previous champion of USE_CASE."""
    from models_ml.registry import rollback

    try:
        result = rollback(settings_for(lake, profile), use_case)
    except _registry_errors() as exc:
        raise _fail(exc) from exc
    emit(
        result,
        as_json,
        lambda r: out.print(
            f"{use_case}: champion is version {r['champion']} "
            f"again (rolled back {r['rolled_back']})"
        ),
    )


@writes_lake("score")
def score(
    use_case: UseCaseArg,
    source: Annotated[
        str | None,
        typer.Option("--table", help="Table to score (default: the use case's feature table)"),
    ] = None,
    version: Annotated[str | None, typer.Option(help="Model version (default: champion)")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Score the population as of this date, YYYY-MM-DD (default: the latest "
            "prediction date in the feature table)",
        ),
    ] = None,
    lake: LakeOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score USE_CASE's scoring population (config/ml/<USE_CASE>.yaml `population`) with the
    champion MOJO: appended to `gold.predictions_<USE_CASE>`, alone in
    `gold.predictions_<USE_CASE>_latest` and the JSON export; PSI against the previous run
    and the model's held-out predictions."""
    from datetime import date

    from models_ml.batch import as_dict
    from models_ml.batch import score as run_score

    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError as exc:
        raise typer.BadParameter(f"--as-of {as_of!r}: expected a date YYYY-MM-DD") from exc
    try:
        result = run_score(
            settings_for(lake, profile), use_case, table=source, version=version, as_of=day
        )
    except (*_registry_errors(), ValueError) as exc:
        raise _fail(exc) from exc

    def render(r: dict) -> None:
        out.print(
            f"{r['rows']} rows of {r['source_table']} as of {r['as_of']} scored by {use_case} "
            f"v{r['model_version']} (run {r['run_id']}) -> {r['predictions_table']}, appended "
            f"to {r['history_table']}, and {r['json_path']}"
        )
        for d in r["monitoring"]:
            out.print(f"  PSI {d['psi']:.4f} ({d['level']}) against {d['against']}")

    emit(as_dict(result), as_json, render)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: a free one, printed)")] = 8000,
    reload_seconds: Annotated[
        float, typer.Option(help="How often to check the registry for a new champion")
    ] = 5.0,
    lake: LakeOption = None,
    profile: ProfileOption = None,
) -> None:
    """Serve the champions over REST (needs $CMS_PIPELINE_API_KEY; docs at /docs)."""
    import socket

    import uvicorn

    from models_ml.api import create_app

    try:
        app = create_app(settings_for(lake, profile), reload_seconds=reload_seconds)
    except RuntimeError as exc:
        raise _fail(exc) from exc
    # bound here, so that the address printed is the one served, port 0 included
    listener = socket.create_server((host, port))
    console.print(f"Serving the champions on http://{host}:{listener.getsockname()[1]} (/docs)")
    # log_config=None: uvicorn's records go through the CLI's logging (--log-format)
    config = uvicorn.Config(app, log_level="warning", log_config=None)
    uvicorn.Server(config).run(sockets=[listener])


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4f}"


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.add_typer(models_app, name="models")
    app.command("score")(score)
    app.command("serve")(serve)
