"""Run dbt in-process on the pipeline's SparkSession.

`run_dbt(settings, ["build", ...])` runs dbt with the committed `dbt_project/profiles.yml`,
its environment variables set from the settings (`profile_env`: the same `spark_conf(settings)`
the pipeline's session uses; dbt-spark session mode calls `getOrCreate()` and so reuses the
running session). It refuses to run while the files compiled from config/mappings are stale,
and turns failures into one `DbtError` that names the model or test, the message and where
failing rows are stored, instead of a raw Spark `AnalysisException`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cms_pipeline.config import PROJECT_ROOT, ConfigError, Settings, read_yaml
from cms_pipeline.mapping_sql import stale_files
from cms_pipeline.runtime import environment
from cms_pipeline.spark import get_spark, spark_conf

# dbt itself (about 2 s to import) is imported inside the functions that run or render it:
# this module's settings, errors and paths are read by publish, exports and the gates.

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
PROFILES_FILE = DBT_PROJECT_DIR / "profiles.yml"
PROFILE_NAME = "cms_pipeline"
# first line of what follows a Spark error message: plan, SQL echo, stack trace
_NOISE = re.compile(r"^\s*('|\+-|:-|== SQL ==|JVM stacktrace:|at org\.|\tat |compiled code at)")
# terminal colours (a unit test's diff of actual and expected rows has them)
_COLOURS = re.compile(r"\x1b\[[0-9;]*m")
# dbt subcommands that take no --vars
_NO_VARS = {("clean",), ("deps",), ("init",), ("debug",)}
# dbt subcommands that never query Spark: no session is started for them
_NO_SPARK = {("clean",), ("deps",), ("init",), ("docs", "serve")}


class DbtError(RuntimeError):
    """A dbt command failed; the message names each failing model or test."""

    def __init__(self, message: str, run: DbtRun | None = None):
        super().__init__(message)
        self.run = run


@dataclass
class NodeResult:
    unique_id: str
    name: str
    resource_type: str  # model | seed | test | unit_test | snapshot | operation
    status: str  # success | error | fail | warn | pass | skipped
    message: str = ""
    failures: int | None = None
    relation: str | None = None  # model table, or the stored failures of a test
    attached_to: str | None = None  # the model a test checks
    materialized: str | None = None
    publish: bool = True  # config meta `publish: false` keeps a table out of the layer
    execution_time: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class DbtRun:
    args: list[str]
    success: bool
    elapsed: float
    nodes: list[NodeResult] = field(default_factory=list)
    error: str | None = None

    def of_type(self, *types: str) -> list[NodeResult]:
        return [n for n in self.nodes if n.resource_type in types]

    def problems(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.status in ("error", "fail")]

    def to_dict(self) -> dict:
        return {
            "args": self.args,
            "success": self.success,
            "elapsed": round(self.elapsed, 3),
            "error": self.error,
            "nodes": [n.to_dict() for n in self.nodes],
        }

    @classmethod
    def from_dict(cls, data: dict) -> DbtRun:
        """The run `to_dict` wrote (a build's run record)."""
        nodes = [NodeResult(**node) for node in data["nodes"]]
        return cls(data["args"], data["success"], data["elapsed"], nodes, data.get("error"))


# --- configuration --------------------------------------------------------------------


def dbt_dir(settings: Settings) -> Path:
    return settings.metadata_path("dbt")


def storage_config(settings: Settings) -> dict:
    return read_yaml(Path(settings.config_dir) / "storage.yaml")


def table_file_format(settings: Settings) -> str:
    """File format of the tables dbt builds (config/storage.yaml, `tables`)."""
    tables = storage_config(settings).get("tables") or {}
    key = "file_format_native_delta" if settings.spark.native_delta else "file_format"
    value = tables.get(key)
    if value not in ("parquet", "delta"):
        raise ConfigError(
            f"{Path(settings.config_dir) / 'storage.yaml'}: tables.{key} must be parquet or delta"
        )
    return value


# the session's settings that profiles.yml reads from the environment (the others are
# the same in every profile and written there as they are)
SPARK_ENV = {
    "spark.master": "CMS_DBT_SPARK_MASTER",
    "spark.app.name": "CMS_DBT_SPARK_APP_NAME",
    "spark.driver.extraJavaOptions": "CMS_DBT_SPARK_DRIVER_JAVA_OPTIONS",
    "spark.executor.extraJavaOptions": "CMS_DBT_SPARK_EXECUTOR_JAVA_OPTIONS",
    "spark.sql.shuffle.partitions": "CMS_DBT_SPARK_SHUFFLE_PARTITIONS",
    "spark.driver.memory": "CMS_DBT_SPARK_DRIVER_MEMORY",
}


def profile_env(settings: Settings) -> dict[str, str]:
    """The variables that make dbt_project/profiles.yml the profile of these settings.

    `local`: session mode on the pipeline's SparkSession, with the session's own settings
    (dbt's getOrCreate() applies them to the running session: they must be equal).
    `cluster`: a Spark Thrift Server (`settings.dbt.thrift_*`, see the cluster profile of
    config/pipeline.yaml). `databricks`: host, cluster and token are read by dbt from the
    environment, so no secret is written to disk.
    """
    dbt = settings.dbt
    conf = spark_conf(settings)
    env = {
        "DBT_TARGET": dbt.target,
        "CMS_DBT_THREADS": str(dbt.threads),
        "CMS_DBT_THRIFT_HOST": dbt.thrift_host,
        "CMS_DBT_THRIFT_PORT": str(dbt.thrift_port),
        "CMS_DBT_THRIFT_USER": dbt.thrift_user,
        "CMS_DBT_METADATA": str(Path(settings.metadata).resolve()),
    }
    # a setting the session lacks (no JVM flags: no executor options) is set empty
    env.update({name: conf.get(key, "") for key, name in SPARK_ENV.items()})
    return env


def render_profiles(env: Mapping[str, str]) -> dict:
    """dbt_project/profiles.yml as dbt renders it in the environment `env`."""
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    set_invocation_context(env)  # where dbt's env_var() looks
    return ProfileRenderer({}).render_data(yaml.safe_load(PROFILES_FILE.read_text()))


def profiles(settings: Settings) -> dict:
    """dbt_project/profiles.yml as dbt renders it when the pipeline runs dbt."""
    return render_profiles({**os.environ, **profile_env(settings)})


def dbt_vars(settings: Settings, **extra) -> dict:
    return {
        "file_format": table_file_format(settings),
        **{k: v for k, v in extra.items() if v is not None},
    }


@contextmanager
def _dbt_environment(settings: Settings, quiet: bool) -> Iterator[None]:
    base = dbt_dir(settings)
    wanted = {
        "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_TARGET_PATH": str(base / "target"),
        "DBT_LOG_PATH": str(base / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_QUIET": "true" if quiet else "false",
    }
    if quiet:  # errors too stay off stdout, which holds our summary (and --json); the
        # callbacks still see every event and our error names them; the file log keeps all
        wanted["DBT_LOG_LEVEL"] = "none"
    with environment(**wanted, **profile_env(settings)):
        yield


# --- running --------------------------------------------------------------------------


def _accept_empty_command_results() -> None:
    """The Spark Thrift Server answers a command (CREATE VIEW, DROP ...) with a `Result`
    column and no column data; PyHive's fetchall then fails with "'NoneType' object is not
    iterable", which breaks dbt unit tests over thrift (dbt-labs/dbt-adapters#481). Such an
    answer has no rows: return none."""
    from dbt.adapters.spark.connections import PyhiveConnectionWrapper

    original = PyhiveConnectionWrapper.fetchall
    if getattr(original, "accepts_empty_command_results", False):
        return

    def fetchall(self):
        try:
            return original(self)
        except TypeError as exc:
            if "NoneType" not in str(exc):
                raise
            return []

    fetchall.accepts_empty_command_results = True
    PyhiveConnectionWrapper.fetchall = fetchall


def _is_one_of(args: list[str], commands: set[tuple[str, ...]]) -> bool:
    return any(tuple(args[: len(cmd)]) == cmd for cmd in commands)


def _takes_vars(args: list[str]) -> bool:
    return not _is_one_of(args, _NO_VARS)


def needs_session(settings: Settings, args: list[str]) -> bool:
    """Whether this dbt command runs on the pipeline's SparkSession (session mode)."""
    return settings.dbt.target == "local" and not _is_one_of(args, _NO_SPARK)


def short_error(text: str) -> str:
    """The useful part of a Spark/dbt error: no JVM stack trace, no repeated blank lines,
    no terminal colours."""
    lines = []
    for line in _COLOURS.sub("", str(text)).strip().splitlines():
        if _NOISE.match(line):
            break  # query plan, SQL echo or JVM stack trace follow: not for people
        if line.strip():
            lines.append(line.rstrip())
    return "\n".join(lines[:8])


def _node_results(result) -> list[NodeResult]:
    nodes = []
    for r in getattr(result, "results", None) or []:
        node = getattr(r, "node", None)
        if node is None:
            continue
        status = str(getattr(r.status, "value", r.status))
        # the model a data test or unit test checks
        attached = (
            getattr(node, "attached_node", None)
            or getattr(node, "tested_node_unique_id", None)
            or getattr(node, "model", None)
        )
        config = getattr(node, "config", None)
        relation = getattr(node, "relation_name", None)
        if relation:
            relation = relation.replace("`", "")
        nodes.append(
            NodeResult(
                unique_id=node.unique_id,
                name=node.name,
                resource_type=str(getattr(node.resource_type, "value", node.resource_type)),
                status=status,
                message=short_error(r.message or "") if status in ("error", "fail", "warn") else "",
                failures=getattr(r, "failures", None),
                relation=relation,
                attached_to=attached.split(".")[-1] if attached else None,
                materialized=getattr(config, "materialized", None),
                publish=bool((getattr(config, "meta", None) or {}).get("publish", True)),
                execution_time=float(getattr(r, "execution_time", 0.0) or 0.0),
            )
        )
    return nodes


def describe_problems(run: DbtRun) -> str:
    lines = []
    for n in run.problems():
        if n.resource_type == "test":
            where = f" on model {n.attached_to}" if n.attached_to else ""
            if n.status == "error":  # the test query itself failed: say why
                lines.append(f"test {n.name}{where} could not run: {n.message}")
                continue
            rows = f"{n.failures} failing row(s)" if n.failures is not None else "failed"
            stored = f"; rows to look at: select * from {n.relation}" if n.relation else ""
            lines.append(f"test {n.name}{where}: {rows}{stored}")
        elif n.resource_type == "unit_test":
            where = f" on model {n.attached_to}" if n.attached_to else ""
            lines.append(f"unit test {n.name}{where}: {n.message}")
        else:
            where = f" ({n.relation})" if n.relation else ""
            lines.append(f"{n.resource_type} {n.name}{where} failed: {n.message}")
    return "\n".join(lines)


def run_dbt(
    settings: Settings,
    args: list[str],
    *,
    spark=None,
    vars: dict | None = None,
    quiet: bool = True,
    raise_on_failure: bool = True,
) -> DbtRun:
    """Run one dbt command in this process (`args` as after `dbt`, e.g. ["build", "-s", "x"])."""
    from dbt.cli.main import dbtRunner

    stale = stale_files(settings)
    if stale:
        names = ", ".join(str(p.relative_to(PROJECT_ROOT)) for p in stale)
        raise ConfigError(
            f"{names}: not what config/mappings compiles to; run `cms-pipeline mappings compile`"
        )
    if spark is None and needs_session(settings, args):
        spark = get_spark(settings)  # dbt's session mode picks this session up
    if settings.dbt.target == "cluster":
        _accept_empty_command_results()
    full_args = list(args)
    if _takes_vars(args):
        merged = dbt_vars(settings, **(vars or {}))
        full_args += ["--vars", yaml.safe_dump(merged, default_flow_style=True, width=10**9)]
    running: list[str] = []  # nodes started and not finished (dbt runs several at once)
    errors: list[str] = []

    def _track(event) -> None:  # which nodes run, and error events outside any node
        if event.info.name == "NodeStart":
            running.append(event.data.node_info.unique_id)
        elif event.info.name == "NodeFinished" and event.data.node_info.unique_id in running:
            running.remove(event.data.node_info.unique_id)
        elif str(event.info.level) in ("error", "EventLevel.ERROR") and event.info.msg:
            errors.append(str(event.info.msg))

    started = time.monotonic()
    with _dbt_environment(settings, quiet):
        try:
            res = dbtRunner(callbacks=[_track]).invoke(full_args)
        except Exception as exc:  # session mode can leak raw Spark errors
            res = None
            crash = exc
    elapsed = time.monotonic() - started
    if res is None:
        run = DbtRun(args, False, elapsed, error=short_error(str(crash)))
    else:
        run = DbtRun(args, bool(res.success), elapsed, _node_results(res.result))
        if res.exception is not None:
            run.error = short_error(str(res.exception))
        elif not run.success and not run.problems() and errors:
            run.error = short_error("\n".join(errors))
    if not run.success and raise_on_failure:
        raise DbtError(_failure_message(run, running), run)
    return run


def _failure_message(run: DbtRun, running: list[str]) -> str:
    head = f"dbt {' '.join(run.args)} failed"
    body = describe_problems(run)
    if run.error:
        names = ", ".join(node.split(".", 2)[-1] for node in running)
        where = f" while running {names}" if names else ""
        body = "\n".join(filter(None, [body, f"dbt error{where}: {run.error}"]))
    return f"{head}:\n{body or 'see the dbt log under the metadata folder (dbt/logs)'}"
