"""`cms-pipeline mappings doc` as a child process: the document it writes says, for every
column of every source contract (config/sources/synpuf.yaml), the silver column it lands
in, its type and its decoding exactly as config/mappings says; a changed mapping changes
the document. The expected rows are derived here from the YAML files themselves, not from
cms_pipeline.mapping's expansion."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cms_pipeline.config import CONFIG_DIR

CLI = str(Path(sys.executable).parent / "cms-pipeline")
# what the document promises to write for each type and decoding (config/mappings/README.md)
TYPES = {"date": "date (from YYYYMMDD)", "decimal": "decimal(12,2)"}
DECODINGS = {
    "flag_1_2": "1 → true, 2 → false",
    "flag_y_0": "Y → true, 0 → false",
    "zero_pad_2": "left-padded to 2 digits",
    "zero_pad_3": "left-padded to 3 digits",
}
# the contract domain a decoding assumes: a flag decoded from other codes would lie
DOMAINS = {"flag_1_2": {"1", "2"}, "flag_y_0": {"0", "Y"}}


def write_doc(config: Path, out: Path) -> str:
    env = {**os.environ, "CMS_PIPELINE_CONFIG": str(config)}
    argv = [CLI, "mappings", "doc", "--out", str(out), "--json"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"path": str(out)}
    return out.read_text()


def parse(text: str) -> dict[str, dict]:
    """Sections of the document by bronze table: silver model, key and table rows."""
    sections: dict[str, dict] = {}
    for line in text.splitlines():
        if heading := re.fullmatch(r"## bronze\.(\w+) → silver\.(\w+)", line):
            current = sections[heading[1]] = {"model": heading[2], "rows": []}
        elif key := re.match(r"Key: (.*?)\.", line):
            current["key"] = key[1].split(", ")
        elif line.startswith("| ") and not line.startswith("| source column "):
            cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
            current["rows"].append(tuple(c.strip().replace("\\|", "|") for c in cells))
    return sections


def _numbers(spec: dict) -> range:
    first, last = spec["repeat"]
    return range(first, last + 1)


def _expand(item: dict) -> list[tuple[int, dict]]:
    """(position, {column: source}) of one unpivot item; `repeat` numbers `{n}`."""
    if "repeat" in item:
        return [(n, {k: v.format(n=n) for k, v in item["values"].items()}) for n in _numbers(item)]
    return [(item["position"], item["values"])]


def _decoding(column: dict) -> str:
    parts = [DECODINGS[column["decode"]]] if column.get("decode") else []
    if lookup := column.get("lookup"):
        parts.append(f"label in `{lookup['name']}` from seed `{lookup['seed']}`")
    return "; ".join(parts)


def expected_rows(mapping: dict) -> set[tuple]:
    """(source, target, type, decoding, description) rows, from one mapping file."""
    rows = {
        (
            c["source"],
            f"silver.{mapping['model']}.{c['name']}",
            TYPES.get(c["type"], c["type"]),
            _decoding(c),
            c.get("description", ""),
        )
        for c in mapping["columns"]
    }
    for target, unpivot in (mapping.get("unpivots") or {}).items():
        columns = {c["name"]: c for c in unpivot["columns"]}
        for item in unpivot["items"]:
            for position, values in _expand(item):
                for name, source in values.items():
                    column = columns[name]
                    rows.add(
                        (
                            source,
                            f"silver.{target}.{name} ({unpivot['position']} = {position})",
                            TYPES.get(column["type"], column["type"]),
                            ("unpivot: one row per present value; " + _decoding(column)).strip(),
                            column.get("description", ""),
                        )
                    )
    return rows


def contract_columns(contract: dict) -> dict[str, dict]:
    """The contract's columns by name, numbered ones (`repeat`) one by one."""
    columns = {}
    for column in contract["columns"]:
        if "repeat" in column:
            columns |= {column["name"].format(n=n): column for n in _numbers(column)}
        else:
            columns[column["name"]] = column
    return columns


def mapping_files(config: Path) -> dict[str, dict]:
    files = [yaml.safe_load(p.read_text()) for p in sorted((config / "mappings").glob("*.yaml"))]
    return {m["source"]: m for m in files}


@pytest.fixture(scope="module")
def doc(tmp_path_factory) -> dict[str, dict]:
    return parse(write_doc(CONFIG_DIR, tmp_path_factory.mktemp("doc") / "mapping.md"))


def test_each_mapping_file_is_one_section_with_exactly_its_rows(doc):
    mappings = mapping_files(CONFIG_DIR)
    assert set(doc) == set(mappings)
    for table, mapping in mappings.items():
        section = doc[table]
        assert section["model"] == mapping["model"]
        assert section["key"] == mapping["key"]
        rows = section["rows"]
        assert len(rows) == len(set(rows)), f"{table}: a row written twice"
        assert set(rows) == expected_rows(mapping), table


def test_every_contract_column_appears_with_a_type_and_decoding_true_to_the_contract(doc):
    sources = yaml.safe_load((CONFIG_DIR / "sources" / "synpuf.yaml").read_text())["sources"]
    mappings = mapping_files(CONFIG_DIR)
    assert {c["table"] for c in sources.values()} == set(doc)
    for contract in sources.values():
        table = contract["table"]
        columns = contract_columns(contract)
        rows = doc[table]["rows"]
        documented = {row[0] for row in rows}
        assert set(columns) <= documented, f"{table}: not in the document"
        # bronze's columns from the file name: the pattern's named groups (but the extension)
        from_name = set(re.compile(contract["file_pattern"]).groupindex) - {"ext"}
        assert documented - set(columns) <= from_name, f"{table}: not in the contract"
        assert doc[table]["key"] == contract["keys"]
        decodes = {c["source"]: c.get("decode") for c in mappings[table]["columns"]}
        for source, target, typ, decoding, _description in rows:
            spec = columns.get(source)
            if spec is None:
                continue
            if spec["type"] in TYPES:  # a CMS date or amount is typed as one in silver
                assert typ == TYPES[spec["type"]], (table, source, target, typ)
            if decodes.get(source) in DOMAINS and "unpivot" not in target:
                assert set(spec["domain"]) == DOMAINS[decodes[source]], (table, source)
                assert DECODINGS[decodes[source]] in decoding


def test_a_changed_mapping_changes_the_document(tmp_path):
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    path = config / "mappings" / "inpatient_claims.yaml"
    mapping = yaml.safe_load(path.read_text())
    (payment,) = [c for c in mapping["columns"] if c["source"] == "CLM_PMT_AMT"]
    payment.update(name="medicare_paid_amount", description="Paid by Medicare | renamed")
    (state,) = [c for c in mapping["columns"] if c["source"] == "PRVDR_NUM"]
    state["lookup"] = {"seed": "codebook_provider", "name": "provider_name"}
    path.write_text(yaml.safe_dump(mapping, sort_keys=False))

    section = parse(write_doc(config, tmp_path / "mapping.md"))["inpatient_claims"]

    rows = set(section["rows"])
    assert rows == expected_rows(mapping)
    assert (
        "CLM_PMT_AMT",
        "silver.inpatient_claims.medicare_paid_amount",
        "decimal(12,2)",
        "",
        "Paid by Medicare | renamed",
    ) in rows
    assert not any(row[1] == "silver.inpatient_claims.payment_amount" for row in rows)
    (provider,) = [row for row in rows if row[0] == "PRVDR_NUM"]
    assert provider[3] == "label in `provider_name` from seed `codebook_provider`"
