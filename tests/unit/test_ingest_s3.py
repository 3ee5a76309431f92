"""The same ingest against an S3-compatible server (moto) instead of the local disk."""

from __future__ import annotations

import boto3
import pytest
from deltalake import DeltaTable

from cms_pipeline.config import load_settings
from cms_pipeline.ingest import ingest
from cms_pipeline.lake import bronze_uri
from cms_pipeline.storage import delta_storage_options
from tests.conftest import SAMPLE_DATA
from tests.unit.test_ingest import data_lines


@pytest.fixture
def s3_server(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    for bucket in ("landing", "lake"):
        client.create_bucket(Bucket=bucket)
    yield client
    server.stop()


def test_ingest_from_and_to_object_storage(s3_server, tmp_path):
    # one CMS ZIP and one CSV, into two tables: object storage costs per request (each
    # file, ledger row and Delta commit), so more files would only add time
    files = sorted((SAMPLE_DATA / "sample_2").glob("DE1_0_2010_Beneficiary*.zip")) + sorted(
        (SAMPLE_DATA / "sample_0").glob("*Inpatient*")
    )
    for f in files:
        s3_server.upload_file(str(f), "landing", f"synpuf/{f.name}")
    settings = load_settings(lake="s3://lake/cms")
    report = ingest(settings, "s3://landing/synpuf")
    assert not report.rejected and len(report.files) == len(files)
    for f in files:
        (result,) = [r for r in report.files if r.file == f.name]
        assert result.rows_read == data_lines(f) == result.rows_bronze + result.rows_quarantined
    uri = bronze_uri(settings, "beneficiary_summary")
    dt = DeltaTable(uri, storage_options=delta_storage_options(uri))
    expected = sum(r.rows_bronze for r in report.files if r.table == "beneficiary_summary")
    assert dt.to_pyarrow_dataset().count_rows() == expected
    again = ingest(settings, "s3://landing/synpuf")
    assert {r.status for r in again.files} == {"duplicate"}
