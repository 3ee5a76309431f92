"""Model card of a registered version: what it predicts, for whom, from which data, how
well (with bootstrap intervals), for which groups, and from which inputs.

Pure functions turn plain data into the card's data dict and the dict into HTML, so the
card is tested without H2O; `models_ml.card_inputs` gathers the inputs at training time and
writes `card.json` (the dict) and `card.html` beside the run's other artefacts.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape

from models_ml import metrics as m
from models_ml.registry import CARD_FILES

CARD_HTML, CARD_JSON = CARD_FILES

# A group's AUC is flagged when it differs from the overall test AUC by more than this.
# 0.05 is about the distance between a fair and a good model; smaller gaps are within
# the noise of a few hundred rows.
AUC_GAP_FLAG = 0.05
# Below these counts a group's AUC is too noisy to compare: reported as too few rows.
MIN_GROUP_ROWS = 100
MIN_GROUP_CLASS_ROWS = 10  # of each class
TOP_N = 10  # features listed by importance and by mean |SHAP|
TOO_FEW = "too few rows"

# dimension -> the feature-table columns that may hold it (first present wins); the
# gold tables name age differently per use case
SUBGROUP_COLUMNS = {
    "sex": ("sex_code",),
    "race": ("race_code",),
    "age band": ("age", "age_at_admission"),
    "state": ("state_code",),
}
AGE_BANDS = ((65, "under 65"), (75, "65-74"), (85, "75-84"), (math.inf, "85+"))
MISSING = "(missing)"


def age_band(age) -> str:
    if age is None or pd.isna(age):
        return MISSING
    return next(label for upper, label in AGE_BANDS if age < upper)


def _code_label(value, labels: dict[str, str]) -> str:
    if value is None or pd.isna(value):
        return MISSING
    code = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    # a code read as a number loses its zero padding ("05" -> 5)
    label = labels.get(code) or labels.get(code.zfill(2))
    return f"{code} {label}" if label else code


def group_labels(values: pd.Series, dimension: str, codebook: dict[str, str]) -> pd.Series:
    """One readable group name per row: an age band, or a code with its codebook label."""
    if dimension == "age band":
        return values.map(age_band)
    return values.map(lambda v: _code_label(v, codebook))


def group_row(name: str, y: np.ndarray, p: np.ndarray, overall_auc: float) -> dict:
    """Rows, positive rate, mean score and AUC of one group, flagged when its AUC is
    further than AUC_GAP_FLAG from the overall AUC; too small groups get no AUC."""
    positives = int(y.sum())
    row = {
        "group": name,
        "rows": int(len(y)),
        "positives": positives,
        "positive_rate": float(y.mean()) if len(y) else None,
        "mean_score": float(p.mean()) if len(y) else None,
        "auc": None,
        "auc_gap": None,
        "flagged": False,
        "status": "ok",
    }
    if len(y) < MIN_GROUP_ROWS or min(positives, len(y) - positives) < MIN_GROUP_CLASS_ROWS:
        row["status"] = TOO_FEW
        return row
    auc = m.roc_auc(y, p)
    gap = auc - overall_auc
    row.update(auc=auc, auc_gap=gap, flagged=bool(abs(gap) > AUC_GAP_FLAG))
    if row["flagged"]:
        row["status"] = f"AUC {gap:+.3f} from overall"
    return row


def subgroup_metrics(
    frame: pd.DataFrame,
    label: str,
    score: str,
    codebooks: dict[str, dict[str, str]] | None = None,
) -> dict:
    """Metrics by sex, race, age band and state for the columns the frame has."""
    codebooks = codebooks or {}
    y_all = frame[label].astype(float).to_numpy()
    overall = m.roc_auc(y_all, frame[score].astype(float).to_numpy())
    dimensions = []
    for dimension, candidates in SUBGROUP_COLUMNS.items():
        column = next((c for c in candidates if c in frame.columns), None)
        if column is None:
            continue
        names = group_labels(frame[column], dimension, codebooks.get(column, {}))
        groups = []
        for name, part in frame.groupby(names, sort=True):
            y = part[label].astype(float).to_numpy()
            groups.append(group_row(str(name), y, part[score].astype(float).to_numpy(), overall))
        dimensions.append({"dimension": dimension, "column": column, "groups": groups})
    return {
        "overall_auc": overall,
        "auc_gap_flag": AUC_GAP_FLAG,
        "min_rows": MIN_GROUP_ROWS,
        "min_class_rows": MIN_GROUP_CLASS_ROWS,
        "dimensions": dimensions,
        "flagged": [
            f"{d['dimension']} {g['group']}"
            for d in dimensions
            for g in d["groups"]
            if g["flagged"]
        ],
    }


def mean_abs_contributions(contributions: pd.DataFrame, top: int = TOP_N) -> list[dict]:
    """Mean |SHAP contribution| per feature (the bias column left out), largest first."""
    cols = [c for c in contributions.columns if c != "BiasTerm"]
    values = contributions[cols].astype(float)
    table = pd.DataFrame(
        {"feature": cols, "mean_abs": values.abs().mean().to_numpy(), "mean": values.mean()}
    )
    table = table.sort_values(["mean_abs", "feature"], ascending=[False, True]).head(top)
    return table.to_dict(orient="records")


def metric_rows(intervals: dict[str, dict]) -> list[dict]:
    return [{"metric": k, **v} for k, v in intervals.items()]


def card_data(
    use_case: dict,
    version: str,
    run_id: str,
    lineage: dict,
    intervals: dict[str, dict],
    calibration_bins: list[dict],
    subgroups: dict,
    varimp: list[tuple[str, float]],
    shap: dict,
    promotion: dict,
    leader: dict,
    docs: dict | None = None,
    bootstrap: dict | None = None,
) -> dict:
    """The card as plain data (what card.json holds and the HTML shows); pure."""
    docs = docs or {}
    snap = lineage.get("snapshot", {})
    pop = use_case["population"]
    split = use_case["split"]
    return _clean(
        {
            "use_case": use_case["name"],
            "description": use_case.get("description", ""),
            "version": str(version),
            "run_id": run_id,
            "model": leader,
            "cohort": {
                "table": use_case["table"],
                "definition": docs.get("table", ""),
                "training_rows": f"rows of {use_case['table']} where {pop['training_flag']} is "
                "true (the label is known)",
                "prediction_date": pop["prediction_date"],
                "split": (
                    f"the last {split['test_periods']} value(s) of {split['time_column']} are the "
                    f"test set; earlier rows train when {pop['prediction_date']} + "
                    f"{pop['label_horizon_days']} days falls before the test period"
                ),
                "cv_groups": split.get("group_column"),
            },
            "label": {
                "column": use_case["target"],
                "definition": docs.get("label", ""),
                "horizon_days": pop["label_horizon_days"],
            },
            "data": {
                "rows_train": snap.get("rows_train"),
                "rows_test": snap.get("rows_test"),
                "positives_train": snap.get("positives_train"),
                "positives_test": snap.get("positives_test"),
                "rows_gap": snap.get("rows_gap"),
                "rows_unlabelled": snap.get("rows_unlabelled"),
                "train_periods": snap.get("train_periods"),
                "test_periods": snap.get("test_periods"),
                "snapshot_sha256": snap.get("files_sha256"),
                "bronze_versions": lineage.get("bronze_versions"),
                "gold_build": lineage.get("gold_build"),
                "dbt_manifest_sha256": lineage.get("dbt_manifest_sha256"),
                "git_commit": lineage.get("git_commit"),
                "config_hash": lineage.get("config_hash"),
                "h2o_version": lineage.get("h2o_version"),
            },
            "bootstrap": bootstrap or {},
            "metrics": metric_rows(intervals),
            "calibration": {
                "bins": calibration_bins,
                "ece": intervals.get("calibration_ece", {}).get("estimate"),
            },
            "top_decile": {
                "lift": intervals.get("lift_top_decile"),
                "capture_rate": intervals.get("capture_top_decile"),
            },
            "subgroups": subgroups,
            "varimp": [{"feature": n, "importance": v} for n, v in varimp[:TOP_N]],
            "shap": shap,
            "promotion": promotion,
        }
    )


def _clean(value):
    """JSON-safe: NaN and infinities become None, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _plain(value) -> str:
    """A lineage value as text: mappings as `key value, ...`, lists comma-separated."""
    if value is None:
        return "n/a"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(map(_plain, value)) or "none"
    return str(value)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _fmt
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"
    env.filters["plain"] = _plain
    return env


def render_html(data: dict, calibration_png: bytes | None = None) -> str:
    """The card's HTML (every value escaped); the calibration plot inlined when given."""
    image = base64.b64encode(calibration_png).decode() if calibration_png else None
    return _environment().get_template("card.html.j2").render(card=data, calibration_png=image)


def write_card(data: dict, out_dir: Path, calibration_png: Path | None = None) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    png = calibration_png.read_bytes() if calibration_png and calibration_png.exists() else None
    html, js = out_dir / CARD_HTML, out_dir / CARD_JSON
    html.write_text(render_html(data, png))
    js.write_text(json.dumps(data, indent=2))
    return {"html": html, "json": js}


def markdown_summary(data: dict, location: str) -> str:
    """The key numbers, for a Prefect markdown artefact; the full card is at `location`."""
    metrics = {r["metric"]: r for r in data["metrics"]}
    lines = [
        f"**{data['use_case']}** v{data['version']} ({data['model'].get('algo', '')}): "
        f"{data['promotion'].get('decision', '')}",
        "",
        "| metric | estimate | 95% CI |",
        "|---|---|---|",
    ]
    for key in ("auc", "aucpr", "brier", "lift_top_decile", "capture_top_decile"):
        r = metrics.get(key)
        if r:
            lines.append(
                f"| {key} | {_fmt(r['estimate'])} | {_fmt(r['low'])} to {_fmt(r['high'])} |"
            )
    flagged = data["subgroups"].get("flagged") or []
    lines += [
        "",
        f"Test rows {data['data'].get('rows_test')}, train rows {data['data'].get('rows_train')}.",
        "Subgroups whose AUC differs from overall by more than "
        f"{data['subgroups'].get('auc_gap_flag')}: " + (", ".join(flagged) or "none") + ".",
        "Top SHAP features: "
        + (", ".join(f["feature"] for f in data["shap"].get("features", [])[:5]) or "n/a")
        + ".",
        "",
        f"Model card: `{location}` (or `cms-pipeline models card {data['use_case']} "
        f"--version {data['version']}`)",
    ]
    return "\n".join(lines)


def load_codebooks(seeds_dir: Path) -> dict[str, dict[str, str]]:
    """Code -> label of sex, race and state from the dbt codebook seeds (if present)."""
    books = {}
    for column, seed in (("sex_code", "sex"), ("race_code", "race"), ("state_code", "state")):
        path = seeds_dir / f"codebook_{seed}.csv"
        if path.exists():
            rows = pd.read_csv(path, dtype=str)
            books[column] = dict(zip(rows["code"], rows["label"], strict=True))
    return books


def dbt_docs(models_dir: Path, table: str, target: str) -> dict[str, str]:
    """The dbt descriptions of the feature table (its cohort) and of the label column."""
    model = table.rsplit(".", 1)[-1]
    for path in sorted(models_dir.rglob("*.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for entry in doc.get("models") or []:
            if entry.get("name") == model:
                columns = {c.get("name"): c for c in entry.get("columns") or []}
                return {
                    "table": entry.get("description", ""),
                    "label": (columns.get(target) or {}).get("description", ""),
                }
    return {}
