"""dbt profile generation per config profile, and the cluster profile's endpoints from the
environment (no JVM)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from cms_pipeline.config import PROJECT_ROOT, ConfigError, load_settings
from cms_pipeline.dbt_runner import (
    DBT_PROJECT_DIR,
    PROFILE_NAME,
    PROFILES_FILE,
    SPARK_ENV,
    needs_session,
    profile_env,
    profiles,
    render_profiles,
)
from cms_pipeline.spark import QUICK_JIT, spark_conf
from cms_pipeline.spark_cluster import (
    LocalCluster,
    _env,
    _local_spark,
    _metastore_argv,
    _thrift_server_argv,
)

CLUSTER_VARS = [
    "CMS_SPARK_MASTER",
    "CMS_HIVE_METASTORE_URIS",
    "CMS_SPARK_WAREHOUSE",
    "CMS_SPARK_THRIFT_HOST",
    "CMS_SPARK_THRIFT_PORT",
    "CMS_SPARK_NATIVE_DELTA",
    "CMS_SPARK_SHUFFLE_PARTITIONS",
    "CMS_SPARK_QUICK_JIT",
    "CMS_SPARK_JAVA_OPTIONS",
    "CMS_PIPELINE_METADATA",
    "CMS_PIPELINE_LANDING",
]


@pytest.fixture
def clean_env(monkeypatch):
    for name in [*CLUSTER_VARS, "CMS_PIPELINE_ENV", "CMS_PIPELINE_LAKE", "DBT_TARGET"]:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):  # scripts/test sets CMS_SPARK_* for the test JVMs
        if name.startswith(("CMS_DBT_", "CMS_SPARK_")):
            monkeypatch.delenv(name)
    return monkeypatch


def _outputs(settings) -> dict:
    return profiles(settings)[PROFILE_NAME]["outputs"]


def test_local_profile_is_session_mode_with_the_sessions_own_settings(clean_env, tmp_path):
    settings = load_settings(profile="local", lake=str(tmp_path / "lake"))
    profile = profiles(settings)[PROFILE_NAME]
    assert profile["target"] == "local"
    local = profile["outputs"]["local"]
    assert local["method"] == "session"
    # dbt's getOrCreate() applies these, so they must equal the pipeline session's
    assert local["server_side_parameters"] == spark_conf(settings)
    assert needs_session(settings, ["build"])
    assert not needs_session(settings, ["docs", "serve", "--port", "8080"])


def test_cluster_profile_defaults_to_the_compose_service_names(clean_env):
    settings = load_settings(profile="cluster")
    profile = profiles(settings)[PROFILE_NAME]
    assert profile["target"] == "cluster"
    cluster = profile["outputs"]["cluster"]
    assert cluster["method"] == "thrift"
    assert (cluster["host"], cluster["port"]) == ("spark-thrift", 10000)
    assert settings.spark.master == "spark://spark-master:7077"
    assert settings.spark.native_delta is False  # Delta jars are not assumed
    assert settings.spark.conf["spark.hadoop.hive.metastore.uris"] == (
        "thrift://hive-metastore:9083"
    )
    assert not needs_session(settings, ["build"])  # dbt talks to the Thrift Server


def test_cluster_profile_follows_a_local_cluster(clean_env, tmp_path):
    cluster = LocalCluster(
        root=tmp_path / "cluster", master_port=7177, master_ui_port=8181, metastore_port=9183,
        thrift_port=10100,
    )  # fmt: skip
    lake = tmp_path / "lake"
    for key, value in cluster.environment(lake=str(lake)).items():
        clean_env.setenv(key, value)
    settings = load_settings()
    assert settings.profile_name == "cluster"
    assert settings.lake == str(lake)
    assert settings.metadata == str(lake / "_metadata")
    assert settings.spark.master == "spark://127.0.0.1:7177"
    assert settings.spark.native_delta is False  # no Delta jars on a local cluster
    conf = spark_conf(settings)
    assert conf["spark.hadoop.hive.metastore.uris"] == "thrift://127.0.0.1:9183"
    assert conf["spark.sql.warehouse.dir"] == str(cluster.warehouse)
    out = _outputs(settings)["cluster"]
    assert (out["host"], out["port"], out["threads"]) == ("127.0.0.1", 10100, 4)
    assert profile_env(settings)["DBT_TARGET"] == "cluster"


def test_databricks_secrets_stay_in_the_environment(clean_env, tmp_path):
    settings = load_settings(profile="cluster", lake=str(tmp_path / "lake"))
    clean_env.setenv("DATABRICKS_TOKEN", "dapi-secret")
    assert "dapi-secret" not in yaml.safe_dump(profile_env(settings))
    committed = yaml.safe_load(PROFILES_FILE.read_text())[PROFILE_NAME]["outputs"]
    assert "env_var('DATABRICKS_TOKEN'" in committed["databricks"]["token"]
    assert _outputs(settings)["databricks"]["token"] == "dapi-secret"  # dbt reads it at run time


def test_plain_dbt_defaults_are_the_local_profile_on_the_projects_lake(clean_env):
    """`cd dbt_project && dbt build` with no variable: the pipeline's local session on
    ./lake (paths relative to dbt_project/, Derby's log in the metadata folder)."""
    plain = render_profiles(os.environ)[PROFILE_NAME]
    assert plain["target"] == "local"
    params = plain["outputs"]["local"]["server_side_parameters"]
    settings = load_settings(lake=str(PROJECT_ROOT / "lake"))
    conf = spark_conf(settings)
    assert set(conf) <= set(params), "a session setting missing from dbt_project/profiles.yml"
    meta = Path(settings.metadata).resolve()
    assert (
        DBT_PROJECT_DIR / params["spark.sql.warehouse.dir"]
    ).resolve() == meta / "spark-warehouse"
    url = params["spark.hadoop.javax.jdo.option.ConnectionURL"]
    database = url.split("databaseName=")[1].split(";")[0]
    assert (DBT_PROJECT_DIR / database).resolve() == meta / "metastore_db"
    java = settings.spark.java_options
    assert params["spark.driver.extraJavaOptions"].endswith(java)
    assert params["spark.executor.extraJavaOptions"] == conf["spark.executor.extraJavaOptions"]
    same = set(conf) - {
        "spark.sql.warehouse.dir",
        "spark.hadoop.javax.jdo.option.ConnectionURL",
        "spark.driver.extraJavaOptions",
        "spark.driver.memory",  # sized from the data by the pipeline; plain dbt: the floor
    }
    assert {k: params[k] for k in same} == {k: conf[k] for k in same}
    assert settings.spark.conf["spark.driver.memory"] == "auto"
    assert params["spark.driver.memory"] == "2g"
    # the pipeline sets each variable that replaces a default
    assert set(SPARK_ENV.values()) <= set(profile_env(settings))


def test_unset_variable_without_default_names_file_key_and_variable(clean_env, tmp_path):
    config = tmp_path / "config"
    (config / "sources").mkdir(parents=True)
    (config / "sources" / "one.yaml").write_text(
        "sources:\n  t:\n    table: t\n    file_pattern: x\n    columns: [{name: A}]\n"
    )
    (config / "pipeline.yaml").write_text(
        "profiles:\n  c:\n    landing: /l\n    lake: /k\n    metadata: /m\n"
        "    spark:\n      master: ${CMS_TEST_NO_SUCH_MASTER}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_settings(config_dir=config, profile="c")
    message = str(err.value)
    assert "pipeline.yaml" in message
    assert "profiles.c.spark.master" in message
    assert "CMS_TEST_NO_SUCH_MASTER" in message
    clean_env.setenv("CMS_TEST_NO_SUCH_MASTER", "spark://h:1")
    assert load_settings(config_dir=config, profile="c").spark.master == "spark://h:1"


def test_java_options_of_the_config_reach_driver_and_executors(clean_env, tmp_path):
    lake = str(tmp_path / "lake")
    settings = load_settings(lake=lake)
    derby = f'"-Dderby.system.home={Path(settings.metadata).resolve()}"'  # quoted for spaces
    # the local profile's collector, unless the environment says otherwise
    chosen = settings.spark.java_options
    assert "-XX:+UseParallelGC" in chosen
    conf = spark_conf(settings)
    assert conf["spark.driver.extraJavaOptions"] == f"{derby} {chosen}"
    assert conf["spark.executor.extraJavaOptions"] == chosen

    clean_env.setenv("CMS_SPARK_JAVA_OPTIONS", "-XX:+UseG1GC -Xss4m")
    clean_env.setenv("CMS_SPARK_QUICK_JIT", "true")
    conf = spark_conf(load_settings(lake=lake))
    assert conf["spark.driver.extraJavaOptions"] == f"{derby} {QUICK_JIT} -XX:+UseG1GC -Xss4m"
    assert conf["spark.executor.extraJavaOptions"] == f"{QUICK_JIT} -XX:+UseG1GC -Xss4m"


def test_quick_jit_reaches_driver_executors_and_the_local_cluster(clean_env, tmp_path):
    lake = str(tmp_path / "lake")
    settings = load_settings(lake=lake)
    derby = f'"-Dderby.system.home={Path(settings.metadata).resolve()}"'  # quoted for spaces
    clean_env.setenv("CMS_SPARK_JAVA_OPTIONS", "")  # no other flags: see the test above
    plain = spark_conf(load_settings(lake=lake))  # by default the JVM's own JIT
    assert plain["spark.driver.extraJavaOptions"] == derby
    assert "spark.executor.extraJavaOptions" not in plain

    clean_env.setenv("CMS_SPARK_QUICK_JIT", "true")
    conf = spark_conf(load_settings(lake=lake))
    assert conf["spark.driver.extraJavaOptions"] == f"{derby} {QUICK_JIT}"
    assert conf["spark.executor.extraJavaOptions"] == QUICK_JIT
    # a one-machine cluster records the local profile's choice when it starts
    # (start_local_cluster) and passes that on to its JVMs and its CLI processes
    cluster = LocalCluster(
        root=tmp_path / "cluster", master_port=7177, master_ui_port=8181, metastore_port=9183,
        thrift_port=10100, quick_jit=_local_spark().quick_jit,
    )  # fmt: skip
    cluster.root.mkdir()
    cluster.save()
    clean_env.delenv("CMS_SPARK_QUICK_JIT")  # a later change does not reach a running cluster
    assert not _local_spark().quick_jit
    started = LocalCluster.load(cluster.root)
    assert started.java_options == QUICK_JIT
    assert QUICK_JIT in " ".join(_thrift_server_argv(started, cores=2))
    for key, value in started.environment(lake=lake).items():
        clean_env.setenv(key, value)
    assert spark_conf(load_settings())["spark.executor.extraJavaOptions"] == QUICK_JIT


def test_the_local_clusters_jvms_take_the_local_profiles_java_options(clean_env, tmp_path):
    lake = str(tmp_path / "lake")
    clean_env.setenv("CMS_SPARK_JAVA_OPTIONS", "-XX:+UseSerialGC -Xss4m")
    cluster = LocalCluster(
        root=tmp_path / "cluster", master_port=7177, master_ui_port=8181, metastore_port=9183,
        thrift_port=10100, quick_jit=_local_spark().quick_jit,
        extra_java_options=_local_spark().java_options,
    )  # fmt: skip
    cluster.root.mkdir()
    cluster.save()
    clean_env.delenv("CMS_SPARK_JAVA_OPTIONS")  # a later change does not reach a running cluster
    assert "-XX:+UseParallelGC" in _local_spark().java_options  # the local profile's default again
    started = LocalCluster.load(cluster.root)
    assert started.java_options == "-XX:+UseSerialGC -Xss4m"
    assert _env(started)["SPARK_DAEMON_JAVA_OPTS"] == started.java_options  # master, worker
    assert "-XX:+UseSerialGC" in _metastore_argv(started)
    assert "-XX:+UseSerialGC -Xss4m" in " ".join(_thrift_server_argv(started, cores=2))
    # the pipeline's session on the cluster (its executors run on the cluster's worker)
    for key, value in started.environment(lake=lake).items():
        clean_env.setenv(key, value)
    conf = spark_conf(load_settings())
    assert conf["spark.executor.extraJavaOptions"] == "-XX:+UseSerialGC -Xss4m"


def test_plain_dbt_parses_the_project_with_no_vars_given(clean_env, tmp_path):
    """`cd dbt_project && dbt parse`, as a dbt user runs it: the committed profile and the
    defaults of dbt_project.yml are enough (no --vars, no generated file); parse starts no
    Spark session."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "CMS_DBT_"))}
    env |= {"DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs")}
    dbt = Path(sys.executable).with_name("dbt")
    done = subprocess.run(
        [str(dbt), "parse", "--no-partial-parse"],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (tmp_path / "target" / "manifest.json").exists()
