"""Batch rows/s and REST latency of MOJO scoring, against h2o.mojo_predict_pandas; and
batch scoring of a Spark table on the executors against collecting it to the driver."""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil

from cms_pipeline.config import PROJECT_ROOT, load_settings
from cms_pipeline.runtime import prepare_environment
from cms_pipeline.stages import tree_rss
from models_ml import registry
from models_ml.schema import Feature
from models_ml.synthetic import readmission_frame

RESULTS = PROJECT_ROOT / "bench" / "results" / "scoring.json"
FEATURES = [
    "age_at_admission",
    "sex_code",
    "state_code",
    "length_of_stay_days",
    "prior_admissions_12m",
    "chronic_condition_count",
    "prior_year_total_cost",
]
CATEGORICAL = {"sex_code", "state_code"}
TARGET = "is_readmitted_30d"


def build_champion(settings, work: Path) -> tuple[Path, Path]:
    """Train a GBM on generated rows, register its MOJO and make it the champion."""
    import h2o
    from h2o.estimators import H2OGradientBoostingEstimator

    from models_ml.h2o_cluster import ensure_h2o

    ensure_h2o(max_mem="2g", nthreads=2)  # this process's own cluster
    frame = readmission_frame(rows=5000)
    frame[FEATURES + [TARGET]].to_parquet(work / "train.parquet", index=False)
    hf = h2o.import_file(str(work / "train.parquet"))
    for col in [*CATEGORICAL, TARGET]:
        hf[col] = hf[col].asfactor()
    gbm = H2OGradientBoostingEstimator(ntrees=50, max_depth=5, seed=1)
    gbm.train(x=FEATURES, y=TARGET, training_frame=hf)
    art = work / "artifacts" / registry.MOJO_DIR
    art.mkdir(parents=True)
    mojo = Path(
        gbm.download_mojo(path=str(art), get_genmodel_jar=True, genmodel_name=registry.GENMODEL_JAR)
    )
    mojo = mojo.rename(art / registry.MOJO_FILE)
    features = [
        Feature(name=f, type="categorical" if f in CATEGORICAL else "numeric") for f in FEATURES
    ]
    (art / registry.FEATURES_FILE).write_text(
        json.dumps({"features": [f.model_dump() for f in features], "id_columns": []})
    )
    h2o.cluster().shutdown()
    c = registry.client(settings)
    run = c.create_run(registry.experiment_id(settings, "readmission_30d"))
    c.log_metric(run.info.run_id, "test_auc", 0.0)
    c.log_artifacts(run.info.run_id, str(work / "artifacts"))
    c.set_terminated(run.info.run_id)
    version = registry.register_version(settings, "readmission_30d", run.info.run_id, {})
    registry.promote(settings, "readmission_30d", version.version, "benchmark")
    return mojo, art / registry.GENMODEL_JAR


def bench_batch(mojo: Path, jar: Path, rows: int) -> dict:
    import h2o

    from models_ml.mojo import MojoScorer

    data = readmission_frame(rows=rows, seed=3)[FEATURES]
    scorer = MojoScorer(mojo, jar)
    scorer.score_frame(data.head(20_000))  # JIT warm-up
    t, cpu = time.perf_counter(), time.process_time()
    ours = scorer.score_frame(data)
    ours_s, ours_cpu = time.perf_counter() - t, time.process_time() - cpu
    t = time.perf_counter()
    base = h2o.mojo_predict_pandas(data, str(mojo), genmodel_jar_path=str(jar))
    base_s = time.perf_counter() - t
    diff = float(np.abs(base["p1"].to_numpy() - ours).max())
    return {
        "rows": rows,
        "jpype_rows_per_s": rows / ours_s,
        # CPU seconds of this process (all its threads): less sensitive to a shared machine
        "jpype_rows_per_cpu_s": rows / ours_cpu,
        "baseline_rows_per_s": rows / base_s,
        "speedup": base_s / ours_s,
        "max_abs_diff_vs_baseline": diff,
    }


def bench_single_baseline(mojo: Path, jar: Path, calls: int) -> list[float]:
    import h2o

    one = readmission_frame(rows=10, seed=5)[FEATURES].head(1)  # the generator needs a few
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        h2o.mojo_predict_pandas(one, str(mojo), genmodel_jar_path=str(jar))
        times.append(time.perf_counter() - t)
    return times


def bench_rest(settings, requests: int) -> list[float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CMS_PIPELINE_API_KEY": "bench"}
    cli = Path(sys.executable).parent / "cms-pipeline"
    proc = subprocess.Popen(
        [str(cli), "serve", "--lake", settings.lake, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": "bench"})
        for _ in range(600):
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        rows = readmission_frame(rows=requests, seed=9)[FEATURES]
        records = [
            {
                k: (None if pd.isna(v) else (str(v) if k in CATEGORICAL else float(v)))
                for k, v in row.items()
            }
            for row in rows.to_dict(orient="records")
        ]
        for rec in records[:200]:  # warm-up
            client.post("/v1/models/readmission_30d/predict", json={"records": [rec]})
        times = []
        for rec in records:
            t = time.perf_counter()
            r = client.post("/v1/models/readmission_30d/predict", json={"records": [rec]})
            times.append(time.perf_counter() - t)
            r.raise_for_status()
        return times
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def peak_rss(found: dict):
    """Sample, every 20 ms while the block runs, the resident memory of this process (the
    driver's Python) and of its whole tree (the Spark JVM and its Python workers too);
    `found` gets the peaks in MiB, less what this process held when the block began."""
    me = psutil.Process()
    start, peaks, done = me.memory_info().rss, [0, 0], threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peaks[0] = max(peaks[0], me.memory_info().rss)
            peaks[1] = max(peaks[1], tree_rss(me, min_child_age=0))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        found["driver_python_peak_growth_mib"] = round((peaks[0] - start) / 2**20, 1)
        found["process_tree_peak_mib"] = round(peaks[1] / 2**20, 1)


def bench_spark(settings, rows: int) -> dict:
    """A feature table of `rows` generated rows scored by the champion: on the executors
    (models_ml.scored_rows.score_on_executors, written as Parquet) against the baseline that
    batch scoring used before: the table collected to the driver (toPandas), scored
    there and written back through Spark. Same rows, same model, one session; each after a warm-up on a small table."""
    from cms_pipeline.spark import get_spark
    from models_ml.scored_rows import score_on_executors
    from models_ml.serving import load_version
    from models_ml.usecase import load_use_case

    spark = get_spark(settings)
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    model = load_version(settings, "readmission_30d")
    uc = load_use_case(settings, "readmission_30d")
    frame = readmission_frame(rows=rows, seed=11)[["admission_id", *FEATURES]]
    spark.createDataFrame(frame).write.mode("overwrite").saveAsTable("default.bench_features")
    table = spark.table("default.bench_features")
    out = Path(settings.lake) / "bench_scored"

    def on_executors(t) -> None:
        now = datetime.now(UTC)
        scored = score_on_executors(settings, spark, t, model, uc, now, date.today(), "bench")
        scored.write.mode("overwrite").parquet(str(out))

    def on_driver(t) -> None:  # what batch scoring did before: collect, score, write back
        local = t.toPandas()
        local["score"] = model.scorer.score_frame(local)
        spark.createDataFrame(local).write.mode("overwrite").parquet(str(out) + "_driver")

    small = table.limit(20_000)
    result = {"rows": rows, "partitions": table.rdd.getNumPartitions()}
    for name, run in (("driver_topandas", on_driver), ("executors", on_executors)):
        run(small)  # warm-up: JVMs, the workers' MOJO
        found: dict = {}
        t, cpu = time.perf_counter(), time.process_time()
        with peak_rss(found):
            run(table)
        seconds = time.perf_counter() - t
        result[name] = {
            "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds),
            "driver_python_cpu_s": round(time.process_time() - cpu, 2),
            **found,
        }
    scored = spark.read.parquet(str(out)).count()
    assert scored == rows, (scored, rows)  # every row scored once
    result["executors_speedup"] = round(
        result["driver_topandas"]["seconds"] / result["executors"]["seconds"], 2
    )
    return result


def pct(times: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(times) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--baseline-calls", type=int, default=20)
    # about a scale-1.0 feature table (one CMS sample: ~230k beneficiary-years)
    parser.add_argument("--spark-rows", type=int, default=250_000)
    args = parser.parse_args()
    prepare_environment()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        work = Path(tmp)
        settings = load_settings(lake=str(work / "lake"))
        mojo, jar = build_champion(settings, work)
        batch = bench_batch(mojo, jar, args.rows)
        base_single = bench_single_baseline(mojo, jar, args.baseline_calls)
        rest = bench_rest(settings, args.requests)
        spark_batch = bench_spark(settings, args.spark_rows)
    result = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_start": load_start,
            "load_avg_1m": os.getloadavg()[0],
        },
        "model": "GBM 50 trees depth 5, 7 features (2 categorical)",
        "batch": batch,
        "spark_batch": spark_batch,
        "single_record_ms": {
            "rest_p50": pct(rest, 50),
            "rest_p99": pct(rest, 99),
            "rest_requests": len(rest),
            "baseline_mojo_predict_pandas_p50": pct(base_single, 50),
            "baseline_calls": len(base_single),
            "p50_speedup": statistics.median(base_single) / statistics.median(rest),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    b, s = result["batch"], result["single_record_ms"]
    print(
        f"batch  : {b['jpype_rows_per_s']:,.0f} rows/s (JPype MOJO) vs "
        f"{b['baseline_rows_per_s']:,.0f} rows/s (mojo_predict_pandas): x{b['speedup']:.1f} "
        f"({b['jpype_rows_per_cpu_s']:,.0f} rows per CPU second); "
        f"max |diff| {b['max_abs_diff_vs_baseline']:.1e}"
    )
    print(
        f"single : REST p50 {s['rest_p50']:.2f} ms, p99 {s['rest_p99']:.2f} ms vs "
        f"mojo_predict_pandas p50 {s['baseline_mojo_predict_pandas_p50']:.0f} ms: "
        f"x{s['p50_speedup']:.0f}"
    )
    sb = result["spark_batch"]
    for name in ("driver_topandas", "executors"):
        r = sb[name]
        print(
            f"spark  : {name:16} {r['rows_per_s']:,} rows/s, driver Python peak growth "
            f"{r['driver_python_peak_growth_mib']} MiB, tree peak {r['process_tree_peak_mib']} MiB"
        )
    print(f"spark  : executors x{sb['executors_speedup']} against the driver ({sb['rows']:,} rows)")
    load = result["machine"]
    print(
        f"load average (1 min): {load['load_avg_1m_start']:.1f} at start, {load['load_avg_1m']:.1f} at end"
    )
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
