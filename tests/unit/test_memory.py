"""The Spark driver's heap sized from the data and the machine (cms_pipeline/memory.py)."""

from __future__ import annotations

import shutil
import zipfile

import fsspec

from cms_pipeline.config import load_settings
from cms_pipeline.memory import (
    CEILING,
    CSV_BYTES_PER_BRONZE_BYTE,
    FLOOR,
    GIB,
    HEAP_PER_CSV_BYTE,
    as_jvm_size,
    auto_heap,
    csv_equivalent_bytes,
    h2o_heap,
    heap_bytes,
)
from cms_pipeline.spark import _running_driver_memory, spark_conf
from tests.conftest import SAMPLE_DATA


def test_heap_grows_with_the_data_between_the_floor_and_a_third_of_ram():
    ram = 24 * GIB
    assert heap_bytes(0, ram) == FLOOR
    assert heap_bytes(100 * 1024**2, ram) == FLOOR + HEAP_PER_CSV_BYTE * 100 * 1024**2
    assert 7 * GIB < heap_bytes(1.9e9, ram) < CEILING  # a full CMS sample: close to 8g
    assert heap_bytes(50e9, ram) == CEILING
    assert heap_bytes(50e9, 9 * GIB) == 3 * GIB  # an 8-9 GiB laptop: a third of it
    assert heap_bytes(50e9, 2 * GIB) == FLOOR  # never below the floor
    assert as_jvm_size(FLOOR) == "1024m"


def test_the_bundled_samples_get_little_more_than_the_floor():
    csv = csv_equivalent_bytes(fsspec.filesystem("file"), str(SAMPLE_DATA))
    assert csv > 0
    heap = heap_bytes(csv, 24 * GIB)
    assert heap == int(FLOOR + HEAP_PER_CSV_BYTE * csv)
    assert heap < FLOOR + 100 * 1024**2  # 13 MB of CSV: the 2 GiB floor before cost 1 GiB more


def test_a_zip_counts_its_members_uncompressed_and_bronze_counts_as_csv(tmp_path):
    csv = next((SAMPLE_DATA / "sample_0").glob("*.csv"))
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copyfile(csv, landing / csv.name)
    with zipfile.ZipFile(landing / "two.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.write(csv, "a.csv")
        z.write(csv, "b.csv")
    fs = fsspec.filesystem("file")
    assert csv_equivalent_bytes(fs, str(landing)) == 3 * csv.stat().st_size
    assert csv_equivalent_bytes(fs, str(landing / csv.name)) == csv.stat().st_size
    assert csv_equivalent_bytes(fs, str(tmp_path / "missing")) == 0
    bronze = tmp_path / "lake" / "bronze" / "t"
    bronze.mkdir(parents=True)
    (bronze / "part.parquet").write_bytes(b"x" * 1000)
    assert csv_equivalent_bytes(fs, str(bronze.parent), bronze=True) == (
        CSV_BYTES_PER_BRONZE_BYTE * 1000
    )


def test_auto_sizes_from_bronze_and_the_incoming_files_and_a_given_size_wins(
    settings, tmp_path, monkeypatch
):
    monkeypatch.delenv("CMS_SPARK_DRIVER_MEMORY", raising=False)  # scripts/test sets it
    settings = load_settings(lake=settings.lake)
    assert settings.spark.conf["spark.driver.memory"] == "auto"  # the shipped default
    empty = auto_heap(settings.lake, None)
    assert empty == as_jvm_size(FLOOR)
    big = tmp_path / "big.csv"
    big.write_bytes(b"0" * (200 * 1024**2))  # 200 MiB to come: 700 MiB more heap
    sized = as_jvm_size(int(FLOOR + HEAP_PER_CSV_BYTE * 200 * 1024**2))
    assert auto_heap(settings.lake, str(big)) == sized
    # once this process's JVM runs (an earlier test on this worker), its heap is the answer
    running = _running_driver_memory()
    assert spark_conf(settings, str(big))["spark.driver.memory"] == (running or sized)
    given = settings.spark.model_copy(update={"conf": {"spark.driver.memory": "6g"}})
    assert spark_conf(settings.model_copy(update={"spark": given}))["spark.driver.memory"] == "6g"


def test_h2o_heap_is_four_times_the_training_data_within_a_quarter_of_ram():
    assert h2o_heap(0, 24 * GIB) == "1024m"
    # 100 MiB of Parquet = 470 MiB of CSV: 1 GiB + 4 x 470 MiB
    assert h2o_heap(100 * 1024**2, 24 * GIB) == f"{1024 + 4 * 470}m"
    assert h2o_heap(10 * GIB, 24 * GIB) == "6144m"
    assert h2o_heap(10 * GIB, 2 * GIB) == "1024m"
