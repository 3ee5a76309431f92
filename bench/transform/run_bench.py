"""Benchmark: silver + gold dbt builds on Spark at two scales of generated data, and the
same main queries on the same silver Parquet files in Spark SQL and DuckDB (single-machine
reference), in the same run. Not a test: it records, it does not assert.

    python bench/transform/run_bench.py --scales 0.005 0.02
    -> bench/results/transform.json (and a table on stdout)

Each scale runs in its own process (one SparkSession with its own Derby metastore each):
generate CMS-layout files (cms_pipeline.synth) -> ingest to bronze -> gated silver and
gold builds -> the queries in queries/*.sql, in Spark and in DuckDB, results compared.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"
SILVER_TABLES = [
    "beneficiary",
    "inpatient_claims",
    "outpatient_claims",
    "carrier_claims",
    "prescription_drug_events",
    "claim_diagnoses",
]


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - start, 3)


def export_parquet(spark, schema: str, folder: Path) -> dict[str, str]:
    """Each silver table written out as plain Parquet, the files both engines then read.
    (Some silver models are views on the per-batch store and have no folder of their own.)"""
    dirs = {}
    for table in SILVER_TABLES:
        dirs[table] = str(folder / table)
        spark.table(f"{schema}.{table}").write.mode("overwrite").parquet(dirs[table])
    return dirs


def _rows_equal(a: list[tuple], b: list[tuple]) -> bool:
    def norm(rows):
        return sorted(
            tuple(
                round(float(v), 2) if isinstance(v, int | float) or hasattr(v, "as_tuple") else v
                for v in row
            )
            for row in rows
        )

    return norm(a) == norm(b)


def run_scale(scale: float, work: Path) -> dict:
    from cms_pipeline.config import load_settings
    from cms_pipeline.ingest import ingest
    from cms_pipeline.publish.builds import build_layer, new_build_id
    from cms_pipeline.publish.publishing import promote
    from cms_pipeline.runtime import prepare_environment
    from cms_pipeline.spark import get_spark
    from cms_pipeline.synth.generator import generate

    prepare_environment()
    landing, lake = work / "landing", work / "lake"
    files, t_generate = _timed(lambda: generate(landing, scale=scale, seed=7, samples=1))
    settings = load_settings(lake=str(lake))
    report, t_ingest = _timed(lambda: ingest(settings, str(landing)))
    spark = get_spark(settings)
    result = {
        "scale": scale,
        "rows": {name: info["rows"] for name, info in files.items()},
        "seconds": {"generate": t_generate, "ingest": t_ingest},
        "bronze_rows": report.totals()["rows_bronze"],
    }
    schemas = {}
    for layer in ("silver", "gold"):
        build, t_build = _timed(
            lambda layer=layer: build_layer(settings, spark, layer, new_build_id())
        )
        if not build.success:
            result["error"] = build.error
            return result
        _, t_promote = _timed(
            lambda b=build, layer=layer: promote(settings, spark, layer, b.build_id)
        )
        schemas[layer] = build.schema
        record = json.loads(
            settings.metadata_path("dbt_runs", f"{layer}_{build.build_id}.json").read_text()
        )
        result["seconds"][f"{layer}_build"] = t_build
        result["seconds"][f"{layer}_promote"] = t_promote
        result[f"{layer}_models"] = {
            n["name"]: round(n["execution_time"], 2)
            for n in record["dbt"]["nodes"]
            if n["resource_type"] in ("model", "seed")
        }
    dirs, result["seconds"]["export_parquet"] = _timed(
        lambda: export_parquet(spark, schemas["silver"], work / "parquet")
    )
    result["queries"] = compare_queries(spark, dirs)
    return result


def compare_queries(spark, dirs: dict[str, str]) -> dict:
    import duckdb

    spark_refs = {t: f"parquet.`{d}`" for t, d in dirs.items()}
    duck_refs = {t: f"read_parquet('{d}/*.parquet')" for t, d in dirs.items()}
    out = {}
    con = duckdb.connect()
    con.execute("set threads to 2")
    for path in sorted((HERE / "queries").glob("*.sql")):
        text = path.read_text()
        spark_rows, t_spark = _timed(
            lambda t=text: [tuple(r) for r in spark.sql(t.format(**spark_refs)).collect()]
        )
        duck_rows, t_duck = _timed(lambda t=text: con.execute(t.format(**duck_refs)).fetchall())
        out[path.stem] = {
            "spark_s": t_spark,
            "duckdb_s": t_duck,
            "spark_over_duckdb": round(t_spark / t_duck, 1) if t_duck else None,
            "rows": len(spark_rows),
            "results_agree": _rows_equal(spark_rows, duck_rows),
        }
    return out


def queries_only(lake: str, schema: str, out: Path) -> None:
    """The Spark-vs-DuckDB comparison on silver tables already built in `lake`."""
    from cms_pipeline.config import load_settings
    from cms_pipeline.runtime import prepare_environment
    from cms_pipeline.spark import get_spark

    prepare_environment()
    settings = load_settings(lake=lake)
    spark = get_spark(settings)
    rows = {t: spark.table(f"{schema}.{t}").count() for t in SILVER_TABLES}
    result = {
        "lake": lake,
        "silver_rows": rows,
        "queries": compare_queries(spark, export_parquet(spark, schema, Path(tempfile.mkdtemp()))),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": _machine(), "runs": [result]}, indent=2))
    for name, q in result["queries"].items():
        print(f"{name}: spark {q['spark_s']}s, duckdb {q['duckdb_s']}s, agree {q['results_agree']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.005, 0.02])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cms_bench_transform"))
    parser.add_argument("--out", type=Path, default=RESULTS / "transform.json")
    parser.add_argument("--one-scale", type=float, help=argparse.SUPPRESS)
    parser.add_argument(
        "--queries-only",
        metavar="LAKE",
        help="only compare the queries on the silver tables of an existing lake",
    )
    parser.add_argument("--silver-schema", default="silver")
    args = parser.parse_args(argv)
    if args.queries_only:
        queries_only(args.queries_only, args.silver_schema, args.out)
        return
    if args.one_scale is not None:  # child process: one scale, JSON on stdout's last line
        work = args.work / f"scale_{args.one_scale}"
        print(json.dumps(run_scale(args.one_scale, work)))
        return
    import shutil

    results = []
    for scale in args.scales:
        shutil.rmtree(args.work / f"scale_{scale}", ignore_errors=True)
        proc = subprocess.run(
            [sys.executable, __file__, "--one-scale", str(scale), "--work", str(args.work)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            results.append({"scale": scale, "error": proc.stderr[-2000:]})
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": _machine(), "runs": results}, indent=2))
    for r in results:
        if "error" in r:
            print(f"scale {r['scale']}: ERROR {r['error'][-500:]}")
            continue
        s = r["seconds"]
        print(
            f"scale {r['scale']}: bronze rows {r['bronze_rows']:,}; silver build "
            f"{s['silver_build']}s, gold build {s['gold_build']}s, ingest {s['ingest']}s"
        )
        for name, q in r["queries"].items():
            print(
                f"  {name}: spark {q['spark_s']}s, duckdb {q['duckdb_s']}s "
                f"(x{q['spark_over_duckdb']}), results agree: {q['results_agree']}"
            )
    print(f"written {args.out}")


def _machine() -> dict:
    import os
    import platform

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_end": os.getloadavg(),
    }


if __name__ == "__main__":
    main()
