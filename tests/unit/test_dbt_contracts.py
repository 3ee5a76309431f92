"""Gold marts carry dbt model contracts: every column named with its data_type, and the
`contract_column_types` data test that compares the built table's types exactly (dbt's own
contract check ignores precision and scale). The built types themselves are checked by that
data test in every dbt build of gold (the gated builds, `cms-pipeline dbt build`, plain
`dbt build`)."""

from __future__ import annotations

import re

import yaml

from cms_pipeline.dbt_runner import DBT_PROJECT_DIR

GOLD = DBT_PROJECT_DIR / "models" / "gold"
# Spark SQL types as DESCRIBE prints them (lower case, no spaces)
SPARK_TYPE = re.compile(
    r"(string|boolean|int|bigint|smallint|tinyint|double|float|date|timestamp"
    r"|decimal\(\d+,\d+\)|array<.+>|map<.+>|struct<.+>)"
)


def gold_model_docs() -> dict[str, dict]:
    docs = {}
    for path in GOLD.glob("*.yml"):
        for model in yaml.safe_load(path.read_text()).get("models") or []:
            docs[model["name"]] = model
    return docs


def test_the_gold_folder_enforces_contracts_and_its_intermediate_views_do_not():
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    gold = project["models"]["cms_pipeline"]["gold"]
    assert gold["+contract"] == {"enforced": True}
    assert gold["readmissions"]["+contract"] == {"enforced": False}


def test_every_gold_mart_declares_each_column_with_a_spark_type():
    docs = gold_model_docs()
    marts = sorted(p.stem for p in GOLD.glob("*.sql"))
    assert marts
    for mart in marts:
        assert mart in docs, f"{mart}: no YAML entry (a contract needs its columns)"
        columns = docs[mart].get("columns") or []
        assert columns, mart
        for column in columns:
            data_type = column.get("data_type")
            assert data_type, f"{mart}.{column['name']}: no data_type"
            assert SPARK_TYPE.fullmatch(data_type), f"{mart}.{column['name']}: {data_type}"
        names = [c["name"] for c in columns]
        assert len(names) == len(set(names)), f"{mart}: a column listed twice"


def test_every_gold_mart_compares_its_built_types_exactly():
    docs = gold_model_docs()
    for mart in sorted(p.stem for p in GOLD.glob("*.sql")):
        tests = [
            t if isinstance(t, str) else next(iter(t)) for t in docs[mart].get("data_tests") or []
        ]
        assert "contract_column_types" in tests, mart
