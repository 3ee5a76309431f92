"""The source -> target mapping document, generated from config/mappings (pure).

One Markdown table per bronze table: every source column, the silver model and column it
lands in, its type and decoding; numbered columns show the unpivot that turns them into
rows. `cms-pipeline docs generate` writes it next to the dbt docs site.
"""

from __future__ import annotations

from pathlib import Path

from cms_pipeline.config import Settings
from cms_pipeline.mapping import load_mappings

_DECODINGS = {
    "flag_1_2": "1 → true, 2 → false",
    "flag_y_0": "Y → true, 0 → false",
    "zero_pad_2": "left-padded to 2 digits",
    "zero_pad_3": "left-padded to 3 digits",
}
_TYPES = {"date": "date (from YYYYMMDD)", "decimal": "decimal(12,2)"}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _decoding(column: dict) -> str:
    parts = []
    if column.get("decode"):
        parts.append(_DECODINGS[column["decode"]])
    if column.get("lookup"):
        lookup = column["lookup"]
        parts.append(f"label in `{lookup['name']}` from seed `{lookup['seed']}`")
    return "; ".join(parts)


def mapping_rows(mapping: dict) -> list[dict]:
    """One row per source column of one expanded table mapping."""
    rows = []
    for c in mapping["columns"]:
        rows.append(
            {
                "source": c["source"],
                "target": f"silver.{mapping['model']}.{c['name']}",
                "type": _TYPES.get(c["type"], c["type"]),
                "decoding": _decoding(c),
                "description": c.get("description", ""),
            }
        )
    by_staging = {r["name"]: r for r in mapping["repeated"]}
    by_staging.update({c["name"]: c for c in mapping["columns"]})
    for target, unpivot in mapping["unpivots"].items():
        lookups = {c["name"]: c for c in unpivot["columns"]}
        for row in unpivot["rows"]:
            for column, staged in row["values"].items():
                source = by_staging[staged]
                rows.append(
                    {
                        "source": source["source"],
                        "target": f"silver.{target}.{column} "
                        f"({unpivot['position']} = {row['position']})",
                        "type": _TYPES.get(source["type"], source["type"]),
                        "decoding": "unpivot: one row per present value; "
                        + _decoding(lookups[column]),
                        "description": lookups[column].get("description", ""),
                    }
                )
    return rows


def render(mappings: dict[str, dict]) -> str:
    lines = [
        "# Source → target mapping (generated from config/mappings; do not edit)",
        "",
        "Each bronze table is deduplicated on its key (the latest delivery wins), then every",
        "column is typed and decoded as below. Numbered columns become rows (unpivots).",
        "",
    ]
    for table, mapping in sorted(mappings.items()):
        lines += [
            f"## bronze.{table} → silver.{mapping['model']}",
            "",
            f"Key: {', '.join(mapping['key_source'])}. "
            + (f"Claim type: `{mapping['claim_type']}`. " if mapping.get("claim_type") else ""),
            "",
            "| source column | target | type | decoding | description |",
            "|---|---|---|---|---|",
        ]
        for row in mapping_rows(mapping):
            lines.append(
                "| "
                + " | ".join(
                    _cell(row[k]) for k in ("source", "target", "type", "decoding", "description")
                )
                + " |"
            )
        lines.append("")
    return "\n".join(lines)


def write_mapping_doc(settings: Settings, path: Path | None = None) -> Path:
    path = path or settings.metadata_path("docs", "mapping.md")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(load_mappings(settings)))
    return path
