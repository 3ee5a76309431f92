"""Shared fixtures. Unit tests need no JVM; integration tests share one SparkSession.

Spark, with its Derby metastore, is one per test process: the session-scoped
`spark_settings` lake holds it, and tests that need their own lake use their own
databases or Delta paths within it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cms_pipeline.config import PROJECT_ROOT, load_settings
from cms_pipeline.runtime import prepare_environment

SAMPLE_DATA = PROJECT_ROOT / "data" / "synpuf"
# Integration modules that read the session's pipeline run (`first_run`) or share its
# Prefect harness (tests/integration/conftest.py): they must run in one worker.
SESSION_LAKE_MODULES = {
    "test_pipeline",
    "test_pipeline_layers",
    "test_claim_semantics",
    "test_gold_reference",
    "test_readmission_reference",
    "test_comorbidity",
    "test_dashboard",
    "test_pipeline_retract",  # after the modules that read the first run's builds
    "test_watcher_flow",
}
# The slowest modules (minutes each on 2 cores), longest first: started first, so that the
# two workers finish together rather than one waiting on a long module at the end.
SLOWEST_FIRST = [
    # tests/heavy (scripts/test-heavy, two workers): each module whole on one worker; xdist
    # gives the first worker the third module, so the shorter of the two long ones leads
    # (CI on 0debd06: deployments 655 s, kill matrix 714 s, transform 72 s)
    "test_deployments",
    "test_kill_matrix",
    "test_transform_cli",  # ingest and transform in child processes
    *sorted(SESSION_LAKE_MODULES),
    "test_dbt_cluster",
    "test_atomic_publish",
    "test_quality_gates",
    "test_incremental_silver",
    "test_ml_models",
    "test_money_gate",  # a whole `cms-pipeline run` in a child process
]


# Modules whose tests tell one story in file order (a first run, then a second one, then a
# retraction; a champion corrupted, then a restart; a second delivery, then a changed one):
# pytest-randomly's shuffle is undone inside them.
IN_FILE_ORDER = SESSION_LAKE_MODULES | {
    "test_api_resilience",
    "test_incremental_silver",
    "test_kill_matrix",  # tests/heavy: the matrix's lake, then --rebuild and a failed gate
}


@pytest.hookimpl(trylast=True)  # after pytest-randomly's shuffle (its seed is in the header)
def pytest_collection_modifyitems(items):
    """Slowest modules first, in SLOWEST_FIRST order, so the two workers finish together;
    every other module, and the tests inside a module, keep pytest-randomly's order."""
    rank = {module: i for i, module in enumerate(SLOWEST_FIRST)}

    def key(item):
        stem = item.path.stem
        if stem in IN_FILE_ORDER:
            return rank.get(stem, len(rank)), stem, item.location[1]
        return rank.get(stem, len(rank)), "", 0

    items.sort(key=key)  # stable: the random order stays where the key ties


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (`-n 2`, scripts/test) each test module runs whole on one worker,
    so its module fixtures (Spark, H2O, a Spark cluster, generated files) start once, and
    the modules of the session's pipeline run share a worker; modules are handed out in
    collection order (slowest first), not by their number of tests. (xdist's own
    `loadgroup` marks do not work with pytest 9.2, which ignores the ids xdist rewrites.)"""
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "session_lake" if Path(module).stem in SESSION_LAKE_MODULES else module

    return ModuleScheduling(config, log)


@pytest.fixture
def sample_data() -> Path:
    return SAMPLE_DATA


@pytest.fixture
def settings(tmp_path):
    """Settings with a fresh, empty lake under tmp_path (no JVM). Landing files written by
    a test are complete at once: ingest does not wait for them to settle."""
    settings = load_settings(lake=str(tmp_path / "lake"))
    return settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"settle_seconds": 0.0})}
    )


@pytest.fixture
def copied_config(settings, tmp_path):
    """`settings` reading a copy of the shipped config folder, and that folder: a test
    edits the copy to see what a config change does."""
    config = tmp_path / "config"
    shutil.copytree(settings.config_dir, config)
    return settings.model_copy(update={"config_dir": str(config)}), config


@pytest.fixture
def landing(tmp_path) -> Path:
    """An empty landing folder; tests copy or write the files they need into it."""
    path = tmp_path / "landing"
    path.mkdir()
    return path


def copy_files(src_dir: Path, dest: Path, pattern: str = "*") -> list[Path]:
    copied = []
    for f in sorted(src_dir.glob(pattern)):
        if f.is_file():
            target = dest / f.name
            shutil.copyfile(f, target)
            copied.append(target)
    return copied


def first_beneficiaries(source_dir: Path, n: int, kinds: tuple[str, ...], dest: Path) -> list[Path]:
    """The files of `source_dir` whose names contain one of `kinds` ("Beneficiary",
    "Inpatient", ...), cut to the first `n` beneficiaries of its 2008 summary file: the
    header and the rows whose first column is one of their ids, in their order and with
    the file's own line ending. Written to `dest` under the same names; returns them."""
    first_year = next(source_dir.glob("DE1_0_2008_Beneficiary_Summary_File_*"))
    ids = {line.split(b",")[0] for line in _lines(first_year)[0][1 : n + 1]}
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source_dir.glob("*")):
        if not any(kind in path.name for kind in kinds):
            continue
        (header, *rows), end = _lines(path)
        kept = [row for row in rows if row.split(b",")[0] in ids]
        written.append(dest / path.name)
        written[-1].write_bytes(end.join([header, *kept]) + end)
    return written


def claim_from_2015(dest: Path) -> str:
    """The first real inpatient row of sample_1 made into a new claim that starts in 2015,
    past the data's years (its contract takes it; the gates' date checks do not), written
    alone to `dest` as a delivery file. Returns the new claim id."""
    src = next((SAMPLE_DATA / "sample_1").glob("*Inpatient_Claims*"))
    (header, first, *_), end = _lines(src)
    fields = first.split(b",")
    fields[1], fields[3] = b"999999999999999", b"20150105"  # CLM_ID, CLM_FROM_DT
    dest.mkdir(parents=True, exist_ok=True)
    name = "DE1_0_2008_to_2010_Inpatient_Claims_Sample_7.csv"
    (dest / name).write_bytes(header + end + b",".join(fields) + end)
    return fields[1].decode()


def _lines(path: Path) -> tuple[list[bytes], bytes]:
    """A CSV file's non-empty lines (bytes) and its line ending."""
    data = path.read_bytes()
    end = b"\r\n" if b"\r\n" in data else b"\n"
    return [line for line in data.split(end) if line], end


@pytest.fixture(scope="session")
def spark_settings(tmp_path_factory):
    """One lake and metastore for the whole test session's SparkSession."""
    prepare_environment()
    return load_settings(lake=str(tmp_path_factory.mktemp("spark") / "lake"))


@pytest.fixture(scope="session")
def spark(spark_settings):
    from cms_pipeline.spark import get_spark

    session = get_spark(spark_settings)
    yield session
    session.stop()
