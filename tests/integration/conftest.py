"""Fixtures for integration tests that run Prefect flows.

The whole pipeline runs once per session on the bundled samples (`first_run`), into the
session's lake: the pipeline tests check that run and run it again, and the layer tests
(test_pipeline_layers.py) read the silver and gold builds it published instead of
building them a second time.
"""

from __future__ import annotations

import shutil

import pytest

from cms_pipeline.config import CONFIG_DIR
from cms_pipeline.runtime import environment, prepare_environment
from tests.conftest import SAMPLE_DATA


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server (SQLite) for the whole test session.

    Its start-up is slow on 2 busy cores and flaky at Prefect's default timeout, so the
    timeout is generous; the server is started once, when a test first asks for it.
    Yields the API URL (PREFECT_API_URL is set to it while the session runs).
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    prepare_environment()
    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def pipeline_landing(tmp_path_factory):
    """Every bundled sample (CSV and ZIP deliveries) in one landing area."""
    path = tmp_path_factory.mktemp("pipeline_landing")
    for sample in ("sample_0", "sample_1", "sample_2"):
        shutil.copytree(SAMPLE_DATA / sample, path / sample)
    return path


def small_budget_config(folder, use_cases: tuple[str, ...]) -> str:
    """The real config with only `use_cases` and a small AutoML budget (2 models, 2 folds,
    no stacked ensembles, which only add time here), to stay fast in CI."""
    import yaml

    config = folder / "config"
    shutil.copytree(CONFIG_DIR, config)
    for path in (config / "ml").glob("*.yaml"):
        if path.stem not in use_cases:
            path.unlink()
            continue
        spec = yaml.safe_load(path.read_text())
        excluded = sorted({*spec["automl"].get("exclude_algos", []), "StackedEnsemble"})
        spec["automl"].update(max_models=2, nfolds=2, exclude_algos=excluded)
        path.write_text(yaml.safe_dump(spec))
    return str(config)


@pytest.fixture(scope="session")
def pipeline_runs() -> list[dict]:
    """Summaries of this session's pipeline runs into the session lake, oldest first."""
    return []


@pytest.fixture(scope="session")
def pipeline_config(tmp_path_factory) -> str:
    """The config every pipeline run of the session uses: a small AutoML budget and one
    use case (test_ml_models.py trains every shipped one)."""
    return small_budget_config(tmp_path_factory.mktemp("config"), ("readmission_30d",))


@pytest.fixture(scope="session")
def run_pipeline(prefect_harness, spark, spark_settings, pipeline_runs, pipeline_config):
    """Run the pipeline flow on the session lake (and remember its summary), with the
    session's config (its H2O is its own: models_ml/h2o_cluster.py)."""
    from flows.pipeline import pipeline_flow

    def run(source, train: str = "missing") -> dict:
        with environment(CMS_PIPELINE_CONFIG=pipeline_config):
            summary = pipeline_flow(source=str(source), lake=spark_settings.lake, train=train)
        pipeline_runs.append(summary)
        return summary

    return run


@pytest.fixture(scope="session")
def partial_landing(tmp_path_factory):
    """A delivery shaped like many public copies of DE-SynPUF: the beneficiary summaries and
    inpatient claims of one sample (sample_2, CMS ZIPs), plus a carrier file refused by its
    contract (the real header with no data rows)."""
    path = tmp_path_factory.mktemp("partial_landing")
    shutil.copytree(SAMPLE_DATA / "sample_2", path / "sample_2")
    carrier = next((SAMPLE_DATA / "sample_0").glob("*Carrier_Claims*"))
    (path / "refused").mkdir()
    with carrier.open("rb") as f:
        (path / "refused" / carrier.name).write_bytes(f.readline())
    return path


@pytest.fixture(scope="session")
def partial_run(run_pipeline, partial_landing, pipeline_runs, spark):
    """The session lake's first run: the partial delivery alone. What it published is
    read right after it (later runs replace it): per silver table its row count and
    column types, and gold.fct_claims' claim types and claims, under "observed"."""
    assert not pipeline_runs, "the partial delivery must be the session lake's first run"
    summary = run_pipeline(partial_landing, train="missing")
    silver = {
        t.name: {
            "rows": spark.table(f"silver.{t.name}").count(),
            "types": {f.dataType.typeName() for f in spark.table(f"silver.{t.name}").schema},
        }
        for t in spark.catalog.listTables("silver")
    }
    claims = spark.table("gold.fct_claims")
    observed = {
        "silver": silver,
        "claim_types": {r[0] for r in claims.select("claim_type").distinct().collect()},
        "claims": claims.count(),
        "bronze_inpatient_claims": spark.table("bronze.inpatient_claims")
        .select("CLM_ID")
        .distinct()
        .count(),
    }
    return {**summary, "observed": observed}


@pytest.fixture(scope="session")
def first_run(partial_run, run_pipeline, pipeline_landing):
    """The first pipeline run on every bundled sample, after the partial delivery: the
    other kinds arrive, and with them ingest, gates, silver, gold, exports, H2O training
    (small budget) and scoring of everything."""
    return run_pipeline(pipeline_landing, train="missing")


@pytest.fixture(scope="module")  # per module: pins bronze again after other modules' runs
def published_builds(first_run, pipeline_runs, spark, spark_settings):
    """The silver and gold builds of the session's last pipeline run that built them (the
    first run, or a later one that built them again), with bronze pinned to the versions
    that silver read. For modules in tests/conftest.py SESSION_LAKE_MODULES only.

    Pinning matters: a later run may have loaded a file into bronze and then stopped at
    its gate, so the newest bronze is not what the published silver was built from.
    """
    from cms_pipeline.bronze_catalog import sync_bronze
    from cms_pipeline.publish.layers import LAYERS
    from cms_pipeline.publish.records import BuildResult

    assert first_run["ok"], first_run["reason"]
    # a run with nothing new keeps the published layers (no "build" entry): skip those
    last = [
        run for run in pipeline_runs if run["ok"] and "build" in run["layers"].get("silver", {})
    ][-1]
    builds = {layer: BuildResult(**last["layers"][layer]["build"]) for layer in LAYERS}
    sync_bronze(spark, spark_settings, builds["silver"].bronze_versions)
    return builds
