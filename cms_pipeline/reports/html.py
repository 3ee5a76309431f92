"""Render a batch profile (and its difference report) as one self-contained HTML page.

The page has no external assets: CSS is inline and the small charts are inline SVG, so
the file can be mailed, archived or opened from object storage as it is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from cms_pipeline.atomic import write_json_atomic, write_text_atomic
from cms_pipeline.batch_diff.report import BatchDiff
from cms_pipeline.profiling.histograms import bin_edges
from cms_pipeline.profiling.records import BatchProfile, ColumnProfile

if TYPE_CHECKING:  # only a type hint here; at run time ingest imports this module
    from cms_pipeline.ingest.expectations import ExpectationFailure

_TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(
    loader=FileSystemLoader(_TEMPLATES),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt_number(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:,.4g}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def _pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


_env.filters["num"] = _fmt_number
_env.filters["pct"] = _pct


def histogram_svg(col: ColumnProfile, width: int = 180, height: int = 44) -> str:
    """Inline SVG bar chart of a column's fixed-bin histogram ('' when it has none)."""
    if not col.histogram:
        return ""
    kind = col.histogram_kind or "log10"
    items = sorted(col.histogram.items())
    if kind == "year":  # show empty years between the first and the last too
        first, last = items[0][0], items[-1][0]
        counts = dict(items)
        items = [(y, counts.get(y, 0)) for y in range(first, last + 1)]
    peak = max(n for _, n in items) or 1
    bar = width / len(items)
    rects = []
    for i, (key, n) in enumerate(items):
        lo, hi = bin_edges(kind, key)
        label = str(key) if kind == "year" else f"{_fmt_number(lo)} to {_fmt_number(hi)}"
        h = max(1.0, (height - 2) * n / peak) if n else 0.0
        rects.append(
            f'<rect x="{i * bar + 0.5:.1f}" y="{height - h:.1f}" width="{max(bar - 1, 1):.1f}" '
            f'height="{h:.1f}"><title>{label}: {n:,}</title></rect>'
        )
    if kind == "year":
        first_label, last_label, scale = items[0][0], items[-1][0], "one bar per year"
    else:  # bins are log-spaced: label the ends with the observed extremes
        first_label, last_label = _fmt_number(col.min_value), _fmt_number(col.max_value)
        scale = "bars on a log scale of the value (4 per decade)"
    return (
        f'<svg class="hist" width="{width}" height="{height + 12}" role="img" '
        f'viewBox="0 0 {width} {height + 12}"><title>{scale}</title>{"".join(rects)}'
        f'<text x="0" y="{height + 11}">{first_label}</text>'
        f'<text x="{width}" y="{height + 11}" text-anchor="end">{last_label}</text></svg>'
    )


def _column_view(col: ColumnProfile, shift: Any) -> dict[str, Any]:
    non_null = col.non_null
    top = [
        {"value": v, "count": n, "share": n / non_null if non_null else 0.0}
        for v, n in col.top_values
    ]
    return {
        "p": col,
        "anchor": re.sub(r"[^A-Za-z0-9_-]", "_", col.column),
        "top": top,
        "all_distinct": bool(top) and top[0]["count"] == 1,
        "histogram": histogram_svg(col),
        "shift": shift,
        "conformance_bad": col.conformance_rate is not None and col.conformance_rate < 1.0,
        "null_bad": not col.nullable and col.nulls > 0,
    }


def render_profile_html(
    profile: BatchProfile,
    diff: BatchDiff | None = None,
    failures: list[ExpectationFailure] | None = None,
) -> str:
    """One self-contained HTML page for a batch: expectations, changes, then every column."""
    shifts = {c.column: c for c in diff.columns} if diff is not None else {}
    columns = [_column_view(c, shifts.get(c.column)) for c in profile.columns]
    return _env.get_template("batch_report.html.j2").render(
        profile=profile,
        diff=diff,
        failures=failures or [],
        columns=columns,
        n_nonconforming=sum(1 for c in profile.columns if c.nonconforming),
    )


def write_batch_report(
    directory: str | Path,
    profile: BatchProfile,
    diff: BatchDiff | None = None,
    failures: list[ExpectationFailure] | None = None,
) -> dict[str, Path]:
    """Write `<table>_<batch>.json` and `.html` into `directory`; returns both paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{profile.table}_{profile.batch_id or 'batch'}")
    document = {
        "profile": profile.to_dict(),
        "diff": None if diff is None else diff.to_dict(),
        "summary": [] if diff is None else diff.summary_lines(),
        "expectation_failures": [f.__dict__ for f in failures or []],
    }
    json_path, html_path = out / f"{stem}.json", out / f"{stem}.html"
    write_json_atomic(json_path, document, indent=2, default=str)
    write_text_atomic(html_path, render_profile_html(profile, diff, failures))
    return {"json": json_path, "html": html_path}
