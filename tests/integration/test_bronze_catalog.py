"""Spark sees exactly a committed bronze Delta version: no orphan, no removed file."""

from __future__ import annotations

import shutil

import pytest
from deltalake import DeltaTable

from cms_pipeline.bronze_catalog import sync_table
from cms_pipeline.config import load_settings
from cms_pipeline.ingest import ingest
from cms_pipeline.ingest.maintenance import compact
from cms_pipeline.lake import bronze_uri
from tests.conftest import SAMPLE_DATA, copy_files

pytestmark = pytest.mark.integration
TABLE = "beneficiary_summary"


def test_spark_reads_exactly_the_synced_delta_version(spark, tmp_path):
    settings = load_settings(lake=str(tmp_path / "lake"))
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    copy_files(SAMPLE_DATA / "sample_0", first, "DE1_0_2008_Beneficiary*")
    copy_files(SAMPLE_DATA / "sample_0", second, "DE1_0_2009_Beneficiary*")
    ingest(settings, str(first))
    v1 = sync_table(spark, settings, TABLE)
    rows_v1 = DeltaTable(bronze_uri(settings, TABLE)).to_pyarrow_dataset().count_rows()
    assert spark.table(f"bronze.{TABLE}").count() == rows_v1

    # an orphan folder left by a killed write is never read
    orphan = tmp_path / "lake" / "bronze" / TABLE / "_batch_id=orphan-0000"
    shutil.copytree(next((tmp_path / "lake" / "bronze" / TABLE).glob("_batch_id=*")), orphan)
    ingest(settings, str(second))
    v2 = sync_table(spark, settings, TABLE)
    rows_v2 = DeltaTable(bronze_uri(settings, TABLE)).to_pyarrow_dataset().count_rows()
    assert v2 > v1 and spark.table(f"bronze.{TABLE}").count() == rows_v2 > rows_v1

    # compaction removes files from the log (not from disk): Spark follows the log
    compact(settings, TABLE)
    sync_table(spark, settings, TABLE)
    assert spark.table(f"bronze.{TABLE}").count() == rows_v2

    # syncing to an older version pins the table to it
    assert sync_table(spark, settings, TABLE, version=v1) == v1
    assert spark.table(f"bronze.{TABLE}").count() == rows_v1
