"""Heaps sized from the data and the machine: the Spark driver's (`spark.driver.memory:
auto`) and a local H2O's (training).

The heap is a ceiling that the JVM grows into whether the data needs it or not: with a
fixed 8g, the bundled samples (13 MB of CSV) peaked at 7.2 GiB across processes; with the
earlier floor of 2 GiB, the Spark JVM still grew to 2.3-2.6 GiB, 1.75 GiB of it committed
heap (Native Memory Tracking, bench/memory/README.md). A run needs room for what it reads:
  heap = 1 GiB + 3.5 x the data's size as CSV, within [1 GiB, min(8 GiB, a third of RAM)].
Evidence (bench/results/pipeline.md, bench/results/memory.md and tests/heavy): scale 1.0
(11.5 M rows, about 1.9 GB of CSV at 166 bytes a row, bench/results/ingest.md) ran with 8g,
and 4g made a duplicate-key check twice as slow (38 s against 17 s); the rule gives it
7.2 GiB (the 2 GiB + 3 x CSV rule before it gave 7.3). The bundled samples run every stage
in 1 GiB (bench/results/memory.md): the Spark JVM at 1.5 GiB, about 7% of its time in GC.
The data is the lake's bronze plus what the run is about to ingest: bronze Parquet counts
4.7 times its bytes (CSV over bronze bytes of the bundled samples), a ZIP its members'
uncompressed size. An explicit size (config or CMS_SPARK_DRIVER_MEMORY) is used as given.
"""

from __future__ import annotations

import zipfile

import fsspec
import psutil

GIB = 1024**3
FLOOR = GIB
CEILING = 8 * GIB
HEAP_PER_CSV_BYTE = 3.5
CSV_BYTES_PER_BRONZE_BYTE = 4.7  # 12.6 MB of CSV -> 2.7 MB of bronze (bundled samples)


def heap_bytes(csv_bytes: float, ram_bytes: int) -> int:
    """The driver heap for `csv_bytes` of data on a machine with `ram_bytes` of memory."""
    ceiling = max(FLOOR, min(CEILING, ram_bytes // 3))
    return int(min(ceiling, max(FLOOR, FLOOR + HEAP_PER_CSV_BYTE * csv_bytes)))


def as_jvm_size(size: int) -> str:
    """A JVM memory flag value, in whole MiB (e.g. '2048m')."""
    return f"{size // 1024**2}m"


def csv_equivalent_bytes(fs, root: str, bronze: bool = False) -> float:
    """The size of everything under `root` (fsspec) as CSV: bronze Parquet scaled up, ZIPs
    by their members' uncompressed size, anything else as it is. 0 when it is missing."""
    if not fs.exists(root):
        return 0.0
    paths = [root] if fs.isfile(root) else fs.find(root)
    total = 0.0
    for path in paths:
        size = fs.size(path) or 0
        if bronze:
            total += CSV_BYTES_PER_BRONZE_BYTE * size
        elif path.lower().endswith(".zip"):
            try:
                with fs.open(path, "rb") as f:
                    total += sum(i.file_size for i in zipfile.ZipFile(f).infolist())
            except zipfile.BadZipFile:  # ingest names it; here it counts as it is
                total += size
        else:
            total += size
    return total


def auto_heap(lake: str, incoming: str | None) -> str:
    """`spark.driver.memory` for a run on `lake` that will ingest `incoming` (a folder,
    file or URI), on this machine."""
    fs, bronze = fsspec.core.url_to_fs(f"{lake.rstrip('/')}/bronze")
    data = csv_equivalent_bytes(fs, bronze, bronze=True)
    if incoming:
        fs, path = fsspec.core.url_to_fs(incoming)
        data += csv_equivalent_bytes(fs, path)
    return as_jvm_size(heap_bytes(data, psutil.virtual_memory().total))


def h2o_heap(parquet_bytes: int, ram_bytes: int | None = None) -> str:
    """A local H2O's heap for training rows stored in `parquet_bytes` of Parquet: H2O's
    sizing advice, four times the data (docs.h2o.ai, "General Troubleshooting Tips"), the
    data counted as CSV as bronze is, plus 1 GiB for the JVM and AutoML's models; within
    [1 GiB, a quarter of RAM] (H2O's own default is a quarter of RAM)."""
    ram = ram_bytes or psutil.virtual_memory().total
    data = CSV_BYTES_PER_BRONZE_BYTE * parquet_bytes
    return as_jvm_size(int(min(max(GIB, ram // 4), GIB + 4 * data)))
