"""The landing-zone watcher's decision (no JVM, no Prefect server) and the deployment config."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest
import yaml

from cms_pipeline import stack
from cms_pipeline.config import ConfigError
from cms_pipeline.ingest.ledger import SCHEMA
from cms_pipeline.ingest.reader import sha256_of
from flows.watcher import new_arrivals


def ledger_of(*rows: tuple[str, str, str]) -> pa.Table:
    """A ledger with (sha256, file_name, status) rows; other columns as ingest fills them."""
    return pa.Table.from_pylist(
        [
            {
                "sha256": sha,
                "file_name": name,
                "source_file": name,
                "status": status,
                "ingested_at": datetime.now(UTC),
            }
            for sha, name, status in rows
        ],
        schema=SCHEMA,
    )


def test_new_file_arrives_and_the_same_bytes_do_not(landing):
    f = landing / "DE1_0_2008_Beneficiary_Summary_File_Sample_1.csv"
    f.write_text("DESYNPUF_ID\n00013D2EFD8E45D1\n")
    sha, size = sha256_of(str(f))
    files = [(f.name, sha, size)]

    arrivals = new_arrivals(files, SCHEMA.empty_table())
    assert [(a.file, a.sha256, a.size_bytes, a.changed) for a in arrivals] == [
        (f.name, sha, size, False)
    ]
    assert new_arrivals(files, ledger_of((sha, f.name, "loaded"))) == []
    assert new_arrivals(files, ledger_of((sha, f.name, "recovered"))) == []


def test_changed_delivery_is_an_arrival_marked_changed():
    ledger = ledger_of(("old", "a.csv", "loaded"))
    [arrival] = new_arrivals([("sub/a.csv", "new", 10)], ledger)
    assert arrival.changed and arrival.file == "sub/a.csv"


def test_rejected_bytes_do_not_start_ingestion_again():
    ledger = ledger_of(("bad", "a.csv", "rejected"))
    assert new_arrivals([("a.csv", "bad", 10)], ledger) == []


def test_same_bytes_under_two_names_arrive_once():
    arrivals = new_arrivals([("a.csv", "h", 1), ("b.csv", "h", 1)], SCHEMA.empty_table())
    assert [a.file for a in arrivals] == ["a.csv"]


def test_a_duplicate_row_in_the_ledger_does_not_hide_a_load():
    # A later `duplicate` outcome for the same bytes keeps them done.
    ledger = ledger_of(("h", "a.csv", "loaded"), ("h", "a.csv", "duplicate"))
    assert new_arrivals([("a.csv", "h", 1)], ledger) == []


def deployments() -> dict[str, dict]:
    return {d["name"]: d for d in stack.prefect_deployments()}


def test_prefect_yaml_is_valid_for_prefect():
    """What `prefect deploy --all` does with the file: its model, every schedule and
    every trigger through Prefect's own code (a bad cron or trigger fails here)."""
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.cli.deploy._schedules import _schedule_config_to_deployment_schedule
    from prefect.cli.deploy._triggers import _initialize_deployment_triggers

    data = yaml.safe_load(stack.PREFECT_YAML.read_text())
    model = PrefectYamlModel.model_validate(data)
    assert [d.name for d in model.deployments] == list(deployments())
    assert data["pull"] == []  # flows come from the installed project, not a pull step
    for d in data["deployments"]:
        for schedule in d.get("schedules") or []:
            made = _schedule_config_to_deployment_schedule(schedule)["schedule"]
            assert made.timezone == "UTC", d["name"]
        _initialize_deployment_triggers(d["name"], d.get("triggers") or [])


def test_every_entrypoint_is_a_flow_of_the_installed_project():
    from prefect import Flow
    from prefect.flows import load_flow_from_entrypoint

    for name, d in deployments().items():
        assert ":" not in d["entrypoint"], name  # a module path: no pull step needed
        assert isinstance(load_flow_from_entrypoint(d["entrypoint"]), Flow), name


def test_scheduled_deployments():
    scheduled = {n: d["schedules"] for n, d in deployments().items() if d.get("schedules")}
    assert set(scheduled) == {
        "watch-landing",
        "nightly-transform",
        "weekly-retrain",
        "daily-scoring",
        "export",
    }
    [poll] = scheduled["watch-landing"]
    assert poll["interval"] > 0
    for name in set(scheduled) - {"watch-landing"}:
        assert all(s.get("cron") for s in scheduled[name]), name


def test_writers_share_the_one_at_a_time_queue():
    by_name = deployments()
    assert by_name["watch-landing"]["work_pool"]["work_queue_name"] != stack.WRITERS_QUEUE
    writers = set(by_name) - {"watch-landing"}
    assert writers == {
        "pipeline",
        "ingest",
        "nightly-transform",
        "weekly-retrain",
        "daily-scoring",
        "export",
    }
    for name in writers:
        assert by_name[name]["work_pool"]["work_queue_name"] == stack.WRITERS_QUEUE, name
        assert by_name[name]["work_pool"]["name"] == "process"
    assert stack.work_queues(list(by_name.values())) == {"process": {stack.WRITERS_QUEUE}}


def test_a_deployment_without_its_entrypoint_is_explained(tmp_path):
    path = tmp_path / "prefect.yaml"
    path.write_text("deployments: [{name: x, work_pool: {name: process}}]")
    with pytest.raises(ConfigError, match="entrypoint"):
        stack.prefect_deployments(path)
