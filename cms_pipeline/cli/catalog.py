"""`cms-pipeline catalog`: every table and model the lake holds."""

# Its commands import what they use inside the command, so that `cms-pipeline --help` (about
# 0.45 s) stays fast: at the top they would add about 0.14 s (the catalogue reads publish
# records and the model registry; measured 2026-12-08, 2 cores).

from __future__ import annotations

import typer

from cms_pipeline.cli.common import JsonOption, LakeOption, emit, out, settings_for, table


def _render(c: dict) -> None:
    out.print(
        table("Tables", c["tables"], ["layer", "table", "format", "version", "rows", "updated"])
    )
    rows = [
        {
            "use case": m["use_case"],
            "version": m["version"] + (" (champion)" if m["is_champion"] else ""),
            "test AUC": _round(m["metrics"].get("test_auc")),
            "test AUCPR": _round(m["metrics"].get("test_aucpr")),
            "trained on": f"{m['table']} ({m['rows_train']} rows, periods {m['train_periods']})",
            "inputs": ", ".join(f"{k}={v}" for k, v in m["input_versions"].items()),
        }
        for m in c["models"]
    ]
    out.print(table("Models", rows) if rows else "No models registered yet (cms-pipeline train).")


def _round(value) -> str:
    return "" if value is None else f"{value:.3f}"


def register(app: typer.Typer) -> None:
    @app.command("catalog")
    def catalog_command(lake: LakeOption = None, as_json: JsonOption = False):
        """List every table (layer, version, rows, last update) and every model (champion,
        metrics). Reads the Delta logs, the publish records and the model registry."""
        from cms_pipeline.catalog import catalog

        emit(catalog(settings_for(lake)), as_json, _render)
