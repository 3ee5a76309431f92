"""What goes into each fingerprint, listed once.

A fingerprint is the SHA-256 of files (cms_pipeline.fingerprint.files_fingerprint): when
one of them changes, what they shape is made again. The package keeps two:

- the code fingerprint: everything that shapes silver and gold or decides their gates.
  A build records it (`code_sha256`); the published layers are current only when built
  with today's (`current_layers`), and unit tests that passed on it are not run again;
- the store fingerprint: everything that shapes a row of the per-batch silver store. A
  silver build adds to the store of an earlier build with the same one (silver_store).

Each input is (base, path): `dbt` is the dbt project, `config` the settings' config
folder, `project` the repository. The order is part of the fingerprint: keep it.
"""

from __future__ import annotations

from pathlib import Path

from cms_pipeline.config import PROJECT_ROOT, Settings
from cms_pipeline.dbt_runner import DBT_PROJECT_DIR
from cms_pipeline.fingerprint import files_fingerprint
from cms_pipeline.publish.layers import LAYERS

# the dbt project, the source mappings, the storage formats and the silver and gold checks
CODE_INPUTS = (
    *(("dbt", d) for d in ("models", "macros", "seeds", "tests")),
    ("dbt", "dbt_project.yml"),
    ("config", "mappings"),
    ("config", "storage.yaml"),
    *(("project", f"soda_checks/{layer}") for layer in LAYERS),
)
# mappings, seeds (decoding), the store models and their macros, the table format
STORE_INPUTS = (
    ("config", "mappings"),
    ("config", "storage.yaml"),
    ("dbt", "macros/mapping"),
    ("dbt", "macros/incremental"),
    ("dbt", "models/silver/store"),
    ("dbt", "seeds"),
)


def input_paths(settings: Settings, inputs: tuple[tuple[str, str], ...]) -> list[Path]:
    """The files and folders that `inputs` name, for these settings."""
    bases = {"dbt": DBT_PROJECT_DIR, "config": Path(settings.config_dir), "project": PROJECT_ROOT}
    return [bases[base] / path for base, path in inputs]


def code_fingerprint(settings: Settings) -> str:
    """SHA-256 of everything that shapes silver and gold or decides their gates: the dbt
    project, the source mappings, the storage formats and the silver and gold checks."""
    return files_fingerprint(input_paths(settings, CODE_INPUTS))


def store_inputs(settings: Settings) -> list[Path]:
    """Everything that shapes a stored row: mappings, seeds (decoding), the store models
    and their macros, the table format."""
    return input_paths(settings, STORE_INPUTS)


def store_fingerprint(settings: Settings) -> str:
    return files_fingerprint(store_inputs(settings))[:16]
