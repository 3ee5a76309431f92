"""The baselines: CSV -> Parquet converters, each run as its own process by run.py.

python -m bench.ingest.converters METHOD INPUT_DIR OUTPUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path


def _names(path: Path) -> list[str]:
    with path.open("rb") as f:
        return f.readline().decode().strip().replace('"', "").split(",")


def polars_sink(src: Path, out: Path) -> None:
    import polars as pl

    for f in sorted(src.glob("*.csv")):
        pl.scan_csv(f, infer_schema=False).sink_parquet(out / f"{f.stem}.parquet")


def pyarrow_stream(src: Path, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    for f in sorted(src.glob("*.csv")):
        names = _names(f)
        reader = pacsv.open_csv(
            f,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=8 << 20),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in names}),
        )
        with pq.ParquetWriter(out / f"{f.stem}.parquet", reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)


def pandas_chunks(src: Path, out: Path) -> None:
    import pandas as pd

    for f in sorted(src.glob("*.csv")):
        for i, chunk in enumerate(pd.read_csv(f, dtype=str, chunksize=200_000)):
            chunk.to_parquet(out / f"{f.stem}-{i:04d}.parquet", index=False)


def spark_csv(src: Path, out: Path) -> None:
    from cms_pipeline.config import load_settings
    from cms_pipeline.spark import get_spark

    spark = get_spark(load_settings(lake=str(out / "_spark_lake")))
    df = spark.read.option("header", True).option("inferSchema", False).csv(str(src / "*.csv"))
    df.write.mode("overwrite").parquet(str(out / "spark"))


def cms_ingest(src: Path, out: Path) -> None:
    from cms_pipeline.config import load_settings
    from cms_pipeline.ingest import ingest

    report = ingest(load_settings(lake=str(out / "lake")), str(src))
    assert not report.rejected, report.to_dict()
    print(report.totals())


def cms_ingest_handwritten(src: Path, out: Path) -> None:
    """The same ingest, its profiles' top values counted by the hand-written counter
    that the DataSketches frequent-items sketch replaced (the before of the comparison)."""
    from bench.ingest.handwritten import TopCounter
    from cms_pipeline.profiling import profilers

    profilers.FrequentValues = TopCounter
    cms_ingest(src, out)


METHODS = {
    "polars scan_csv -> sink_parquet": polars_sink,
    "pyarrow streaming CSV -> ParquetWriter": pyarrow_stream,
    "pandas chunked read_csv -> to_parquet": pandas_chunks,
    "Spark local[2] CSV -> Parquet": spark_csv,
    # before and after the DataSketches top-value sketch, in turn in every round;
    # run.py takes the last method as the project's own
    "cms-pipeline ingest, before: hand-written top-value counter": cms_ingest_handwritten,
    "cms-pipeline ingest (checks, hashing, lineage, Delta)": cms_ingest,
}

if __name__ == "__main__":
    method, src, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    METHODS[method](src, out)
