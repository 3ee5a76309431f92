"""The landing-zone watcher (what it hashes, what it announces, the event the pipeline's
trigger matches), run names, and prefect.yaml as Prefect reads it. No JVM, no server."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pyarrow as pa
import pytest
import yaml

from cms_pipeline import stack
from cms_pipeline.config import ConfigError
from cms_pipeline.ingest.discovery import discover
from cms_pipeline.ingest.ledger import SCHEMA
from cms_pipeline.ingest.reader import sha256_of
from flows.naming import format_run_name
from flows.watcher import (
    ARRIVED,
    Arrival,
    arrival_event,
    hash_changed,
    memory_path,
    new_arrivals,
    read_memory,
    unannounced,
    write_memory,
)


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


BENEFICIARIES = "DE1_0_2008_Beneficiary_Summary_File_Sample_1.csv"
INPATIENT = "DE1_0_2008_to_2010_Inpatient_Claims_Sample_1.csv"


def test_only_files_whose_size_or_mtime_changed_are_hashed_again(settings, landing):
    a, b = landing / BENEFICIARIES, landing / INPATIENT
    a.write_text("DESYNPUF_ID\n00013D2EFD8E45D1\n")
    b.write_text("DESYNPUF_ID,CLM_ID\n00013D2EFD8E45D1,1\n")
    path = memory_path(settings, str(landing))

    files, hashed = hash_changed(discover(settings, str(landing))[0], read_memory(path))
    assert sorted(hashed) == [BENEFICIARIES, INPATIENT]
    assert files[BENEFICIARIES]["sha256"] == sha256_of(str(a))[0]
    write_memory(path, str(landing), files)

    # Same size and mtime: the remembered hash stands, the bytes are not read. (Other
    # bytes of the same length, with the old mtime put back, prove it.)
    stat = a.stat()
    a.write_text("DESYNPUF_ID\n00013D2EFD8E45D2\n")
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    b.write_text("DESYNPUF_ID,CLM_ID\n00013D2EFD8E45D1,1\n00013D2EFD8E45D1,2\n")
    again, hashed = hash_changed(discover(settings, str(landing))[0], read_memory(path))

    assert hashed == [INPATIENT]
    assert again[BENEFICIARIES] == files[BENEFICIARIES]
    assert again[INPATIENT]["sha256"] == sha256_of(str(b))[0] != files[INPATIENT]["sha256"]
    assert again[INPATIENT]["announced"] is False  # its new bytes are announced anew


def test_announced_files_are_not_arrivals_again():
    files = {
        "a.csv": {"size": 1, "mtime": 1.0, "sha256": "h1", "announced": True},
        "b.csv": {"size": 2, "mtime": 2.0, "sha256": "h2", "announced": False},
    }
    assert unannounced(files) == [("b.csv", "h2", 2)]


def test_a_file_announced_long_ago_and_still_not_loaded_is_announced_again():
    """Its run failed or was cancelled before ingesting it: a second event, marked `again`;
    a loaded one is not announced again, nor one announced recently."""
    hour = 3600.0
    now = 100 * hour
    files = {
        "failed_run.csv": {"size": 1, "mtime": 1.0, "sha256": "h1", "announced": True,
                           "announced_at": now - 7 * hour},
        "loaded.csv": {"size": 2, "mtime": 2.0, "sha256": "h2", "announced": True,
                       "announced_at": now - 7 * hour},
        "recent.csv": {"size": 3, "mtime": 3.0, "sha256": "h3", "announced": True,
                       "announced_at": now - hour},
        "new.csv": {"size": 4, "mtime": 4.0, "sha256": "h4", "announced": False},
    }  # fmt: skip
    due = unannounced(files, now, 6 * hour)
    assert [path for path, _, _ in due] == ["failed_run.csv", "loaded.csv", "new.csv"]
    again = frozenset({"failed_run.csv", "loaded.csv"})
    arrivals = new_arrivals(due, ledger_of(("h2", "loaded.csv", "loaded")), again)
    assert [(a.file, a.again) for a in arrivals] == [("failed_run.csv", True), ("new.csv", False)]
    # a memory written before `announced_at` was kept: counted from now, not announced yet
    del files["failed_run.csv"]["announced_at"]
    assert "failed_run.csv" not in [path for path, _, _ in unannounced(files, now, 6 * hour)]
    assert unannounced(files) == [("new.csv", "h4", 4)]  # without `again_after`: as before


def test_the_pipelines_trigger_matches_the_watchers_event_and_takes_its_landing_and_lake():
    from prefect.events.schemas.events import Event
    from prefect.server.events.schemas.automations import EventTrigger

    from flows.pipeline import pipeline_flow

    [trigger] = deployments()["pipeline"]["triggers"]
    event = arrival_event(Arrival("sub/a.csv", "ab12", 10, False), "/in", "/lake")
    assert event["event"] == ARRIVED
    server_side = EventTrigger.model_validate(
        {
            k: v
            for k, v in trigger.items()
            if k in ("match", "expect", "for_each", "posture", "threshold", "within")
        }
    )
    assert server_side.covers(Event(**event))
    other = {**event, "event": "cms.landing.file.removed"}
    assert not server_side.covers(Event(**other))
    # one bucket per landing area and lake: the labels it counts by are on the resource
    assert set(trigger["for_each"]) <= set(event["resource"])
    # the run's parameters are the pipeline's, templated from the event's payload
    assert trigger["parameters"] == {
        "source": "{{ event.payload.landing }}",
        "lake": "{{ event.payload.lake }}",
    }
    assert set(trigger["parameters"]) <= set(pipeline_flow.parameters.properties)
    assert (event["payload"]["landing"], event["payload"]["lake"]) == ("/in", "/lake")
    # a delivery's files seen in one window start one run, which waits for the window
    assert trigger["within"] == trigger["schedule_after"] > 0


@pytest.mark.parametrize(
    "template, parameters, name",
    [
        (
            "ingest {source} -> bronze",
            {"source": "data/synpuf/", "lake": None},
            "ingest synpuf -> bronze",
        ),
        ("ingest {source} -> bronze", {"source": None}, "ingest the landing area -> bronze"),
        ("train {use_case}", {}, "train all use cases"),
        ("score {use_case}", {"use_case": "readmission_30d"}, "score readmission_30d"),
        ("watch {landing}", {"landing": "s3://bucket/in"}, "watch in"),
    ],
)
def test_run_names_say_what_the_run_does(template, parameters, name):
    assert format_run_name(template, parameters) == name


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
