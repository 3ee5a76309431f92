"""A Spark cluster on this machine, for trying (and testing) the `cluster` profile.

    cluster = start_local_cluster(Path("/tmp/cms-cluster"))
    os.environ.update(cluster.environment(lake="/tmp/cms-cluster/lake"))
    ...  # CMS_PIPELINE_ENV=cluster: ingest, transform, docs
    stop_local_cluster(cluster.root)

Four JVMs from the pyspark wheel, each in its own process group, logs under `root/logs`:
a Hive metastore service (Derby under `root`), a standalone master and one worker, and a
Spark Thrift Server (HiveThriftServer2, the endpoint of dbt's thrift method) running as an
application of that master. The pipeline's own SparkSession joins the same master and
metastore, so `bronze.*` tables it registers are the ones dbt reads through the Thrift
Server. The metastore is a service, not embedded Derby, because embedded Derby admits
one process and here two Spark drivers share the catalog.

Every server binds port 0, so no other process can take its port between a choice and
the bind; the port it got is read back (the master and the Thrift Server log it, the
metastore listens on that one port only) before anything that needs it starts. The ports
and processes are kept in `root/cluster.json`, so another process (the `cms-pipeline
cluster` commands) can stop what this one started (cms_pipeline/processes.py starts,
waits for and stops them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from cms_pipeline import processes
from cms_pipeline.config import load_settings
from cms_pipeline.processes import Started, StartError
from cms_pipeline.runtime import java_home, prepare_environment
from cms_pipeline.spark import java_options as spark_java_options

HOST = "127.0.0.1"
STATE_FILE = "cluster.json"
_THRIFT_SERVER = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
_METASTORE = "org.apache.hadoop.hive.metastore.HiveMetaStore"
# How the servers started on port 0 log the port they got (Spark 3.5's Utils and
# ThriftBinaryCLIService, which reads its socket's port back before logging it)
_MASTER_PORT = r"Successfully started service 'sparkMaster' on port (\d+)"
_MASTER_UI_PORT = r"Successfully started service 'MasterUI' on port (\d+)"
_THRIFT_PORT = r"Starting ThriftBinaryCLIService on port (\d+)"
# The cluster's Spark JVMs log at INFO into their log files (root/logs), whatever log4j2
# settings the calling process chose for its own JVMs (the CLI's SPARK_CONF_DIR, see
# cms_pipeline/logs.py, shows warnings only): the ports above are read from INFO lines.
_LOG4J2 = """\
rootLogger.level = info
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


def _local_spark():
    """The local profile's Spark settings: this cluster shares one machine's cores with the
    pipeline, so its JVMs take the local session's JIT choice and JVM flags
    (cms_pipeline/spark.py)."""
    return load_settings(profile="local").spark


class ClusterError(RuntimeError):
    """A cluster process did not start; the message names its log file."""


@dataclass
class LocalCluster:
    root: Path
    # 0 until the server has bound its port (each binds port 0 and reports the port)
    master_port: int = 0
    master_ui_port: int = 0
    metastore_port: int = 0
    thrift_port: int = 0
    started: dict[str, Started] = field(default_factory=dict)  # by name: group leaders
    quick_jit: bool = False  # chosen at start; every JVM and CLI process of it follows
    extra_java_options: str = ""  # likewise

    @property
    def java_options(self) -> str:
        return spark_java_options(self.quick_jit, self.extra_java_options)

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def metastore_uri(self) -> str:
        return f"thrift://{HOST}:{self.metastore_port}"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def environment(self, lake: str | None = None, metadata: str | None = None) -> dict[str, str]:
        """Variables that point the `cluster` profile (config/pipeline.yaml) at this cluster.
        Delta is read with delta-rs, as locally: no Delta jars here."""
        env = {
            "CMS_PIPELINE_ENV": "cluster",
            "CMS_SPARK_MASTER": self.master_url,
            "CMS_HIVE_METASTORE_URIS": self.metastore_uri,
            "CMS_SPARK_WAREHOUSE": str(self.warehouse),
            "CMS_SPARK_THRIFT_HOST": HOST,
            "CMS_SPARK_THRIFT_PORT": str(self.thrift_port),
            "CMS_SPARK_NATIVE_DELTA": "false",
            "CMS_SPARK_SHUFFLE_PARTITIONS": "4",
            "CMS_SPARK_QUICK_JIT": "true" if self.quick_jit else "false",
            "CMS_SPARK_JAVA_OPTIONS": self.extra_java_options,
        }
        if lake:
            env["CMS_PIPELINE_LAKE"] = lake
            env["CMS_PIPELINE_METADATA"] = metadata or str(Path(lake) / "_metadata")
        return env

    def save(self) -> Path:
        body = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        return processes.write_state(self.root / STATE_FILE, body)

    @classmethod
    def load(cls, root: Path) -> LocalCluster:
        path = Path(root) / STATE_FILE
        body = processes.read_state(path)
        if body is None:
            raise ClusterError(f"{path}: no cluster was started under {root}")
        if "pids" in body:  # written before processes were recorded with their start time
            raise ClusterError(
                f"{path}: an older record without start times; stop its process groups by "
                f"hand (kill -- -PID for {body['pids']}), then delete it"
            )
        started = {name: Started(**proc) for name, proc in body["started"].items()}
        return cls(**{**body, "root": Path(body["root"]), "started": started})


# --- processes ------------------------------------------------------------------------


def spark_home() -> Path:
    # only its folder is wanted; PySpark takes about 0.3 s to import, which stopping a
    # cluster (`cms-pipeline cluster stop`) does without
    import pyspark

    return Path(pyspark.__file__).parent


def _env(cluster: LocalCluster) -> dict[str, str]:
    root = cluster.root
    prepare_environment()
    return {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "JAVA_HOME": java_home(),
        "SPARK_LOCAL_IP": HOST,
        "SPARK_LOG_DIR": str(root / "logs"),
        "SPARK_CONF_DIR": str(root / "conf"),  # its log4j2.properties: _LOG4J2
        "SPARK_WORKER_DIR": str(root / "work"),
        "SPARK_DAEMON_JAVA_OPTS": cluster.java_options,  # master and worker
    }


def _launch(cluster: LocalCluster, name: str, argv: list[str]) -> Started:
    """Start one process in its own session (it outlives the caller) and record it."""
    proc = processes.spawn(name, argv, _env(cluster), cluster.logs / f"{name}.log", cluster.root)
    cluster.started[name] = proc
    cluster.save()  # at once, so `stop` finds it even if a later step fails
    return proc


def _bound_port(proc: Started, timeout: float, pattern: str | None = None) -> int:
    """The port a server started on port 0 got, once it listens on it."""
    return processes.wait_for_bound_port(proc, timeout, proc.name, pattern, interval=1.0)


def _workers_alive(cluster: LocalCluster) -> bool:
    try:
        body = httpx.get(f"http://{HOST}:{cluster.master_ui_port}/json/", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    return int(body.get("aliveworkers", 0)) >= 1


def _metastore_argv(cluster: LocalCluster) -> list[str]:
    root = cluster.root
    hiveconf = {
        "javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true"
        ),
        "datanucleus.schema.autoCreateAll": "true",
        "hive.metastore.schema.verification": "false",
        "hive.metastore.warehouse.dir": str(cluster.warehouse),
    }
    return [
        str(Path(java_home()) / "bin" / "java"),
        "-Xmx512m",
        *cluster.java_options.split(),
        # Hive turns on log4j's async logger, whose jar Spark does not ship
        "-Dhive.async.log.enabled=false",
        f"-Dhive.log.dir={cluster.logs}",
        f"-Dderby.system.home={root}",
        "-cp",
        str(spark_home() / "jars" / "*"),
        _METASTORE,
        "-p",
        "0",
        *[arg for k, v in hiveconf.items() for arg in ("--hiveconf", f"{k}={v}")],
    ]


def _thrift_server_argv(cluster: LocalCluster, cores: int) -> list[str]:
    jit = cluster.java_options
    conf = {
        "spark.cores.max": str(cores),  # leaves the other worker cores to the pipeline
        "spark.executor.memory": "1g",
        "spark.ui.enabled": "false",
        "spark.hadoop.hive.metastore.uris": cluster.metastore_uri,
        "spark.sql.warehouse.dir": str(cluster.warehouse),
        "spark.sql.legacy.createHiveTableByDefault": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        # dbt's queries filter partitioned tables by _batch_id IN (...) (silver's per-batch
        # store); the Derby-backed metastore can refuse that filter: Spark then prunes itself
        "spark.sql.hive.metastorePartitionPruningFallbackOnException": "true",
        "spark.driver.extraJavaOptions": (
            f"-Dhive.async.log.enabled=false -Dhive.log.dir={cluster.logs} {jit}"
        ),
        "spark.executor.extraJavaOptions": jit,
    }
    hiveconf = {
        "hive.server2.thrift.port": "0",
        "hive.server2.thrift.bind.host": HOST,
        "hive.exec.local.scratchdir": str(cluster.root / "tmp"),
        # one folder per session, as Hive's default: a shared one is deleted when any
        # session closes, and a session opening at that moment fails ("Couldn't create
        # directory .../resources"), which failed dbt tests at random with threads > 1
        "hive.downloaded.resources.dir": str(cluster.root / "tmp")
        + "/${hive.session.id}_resources",
    }
    return [
        str(spark_home() / "bin" / "spark-submit"),
        "--class",
        _THRIFT_SERVER,
        "--master",
        cluster.master_url,
        "--name",
        "cms-thrift-server",
        *[arg for k, v in conf.items() for arg in ("--conf", f"{k}={v}")],
        "spark-internal",
        *[arg for k, v in hiveconf.items() for arg in ("--hiveconf", f"{k}={v}")],
    ]


def start_local_cluster(
    root: Path | str,
    *,
    worker_cores: int = 4,
    worker_memory: str = "4g",
    thrift_server_cores: int = 2,
    timeout: float = 600,
) -> LocalCluster:
    """Start metastore, master, worker and Thrift Server under `root`; wait until each
    answers. Worker cores are slots, not CPUs: the Thrift Server takes
    `thrift_server_cores` of them and the pipeline's session the rest."""
    root = Path(root).resolve()
    for sub in ("logs", "work", "tmp", "warehouse", "conf"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "conf" / "log4j2.properties").write_text(_LOG4J2)
    local = _local_spark()
    cluster = LocalCluster(
        root=root,
        quick_jit=local.quick_jit,
        extra_java_options=local.java_options,
    )
    spark_class = str(spark_home() / "bin" / "spark-class")
    try:
        # metastore and master start together (the slowest steps on a busy machine)
        metastore = _launch(cluster, "metastore", _metastore_argv(cluster))
        master = _launch(
            cluster,
            "master",
            [
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                HOST,
                "--port",
                "0",
                "--webui-port",
                "0",
            ],
        )
        cluster.master_port = _bound_port(master, timeout, _MASTER_PORT)
        cluster.master_ui_port = _bound_port(master, timeout, _MASTER_UI_PORT)
        cluster.save()
        worker = _launch(
            cluster,
            "worker",
            [
                spark_class,
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                HOST,
                "--cores",
                str(worker_cores),
                "--memory",
                worker_memory,
                "--webui-port",
                "0",  # Spark binds a free port itself: nobody needs to find this one
                "--work-dir",
                str(root / "work"),
                cluster.master_url,
            ],
        )
        processes.wait_until(
            lambda: _workers_alive(cluster), worker, timeout, "worker", interval=1.0
        )
        # Hive logs the 0 it was given, not the port it got; it listens on that one only
        cluster.metastore_port = _bound_port(metastore, timeout)
        cluster.save()
        thrift_server = _launch(
            cluster, "thrift_server", _thrift_server_argv(cluster, thrift_server_cores)
        )
        cluster.thrift_port = _bound_port(thrift_server, timeout, _THRIFT_PORT)
        cluster.save()
    except StartError as exc:
        stop_local_cluster(root)
        raise ClusterError(str(exc)) from exc
    except BaseException:
        stop_local_cluster(root)
        raise
    return cluster


def stop_local_cluster(root: Path | str, grace: float = 20) -> bool:
    """Stop the processes recorded under `root`, the Thrift Server first; False when no
    cluster was started there."""
    try:
        cluster = LocalCluster.load(Path(root).resolve())
    except ClusterError:
        return False
    for name in ("thrift_server", "worker", "master", "metastore"):
        if name in cluster.started:
            processes.stop_group(cluster.started.pop(name), grace)
            cluster.save()
    return True


@contextmanager
def local_cluster(root: Path | str, **options) -> Iterator[LocalCluster]:
    """`start_local_cluster` for the duration of a `with` block."""
    cluster = start_local_cluster(root, **options)
    try:
        yield cluster
    finally:
        stop_local_cluster(cluster.root)
