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
from flows.watcher import TARGETS, new_arrivals


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


def test_schedules_name_deployments_of_prefect_yaml():
    schedules = stack.load_schedules()
    specs = stack.load_deployment_specs(schedules=schedules)
    names = {s.name for s in specs}
    assert set(schedules.schedules) <= names
    # The watcher polls on an interval; it starts deployments named like its targets.
    [poll] = schedules.schedules["watch-landing"]
    assert poll.interval_seconds and poll.interval_seconds > 0
    by_name = {s.name: s for s in specs}
    for target, entry in TARGETS.items():
        module, function = entry.split(":")
        assert by_name[target].module_and_function == (module, function)


def test_schedules_become_prefect_schedules_with_timezone_and_parameters(tmp_path):
    path = tmp_path / "schedules.yaml"
    path.write_text(
        "timezone: Europe/Paris\n"
        "schedules:\n"
        "  weekly-retrain:\n"
        "    - {cron: '0 3 * * 0', parameters: {use_case: readmission_30d}}\n"
        "    - {interval_seconds: 3600, active: false}\n"
    )
    cron, interval = stack.load_schedules(path).for_deployment("weekly-retrain")
    assert cron.cron == "0 3 * * 0" and cron.timezone == "Europe/Paris"
    assert cron.parameters == {"use_case": "readmission_30d"}
    assert interval.interval.total_seconds() == 3600 and interval.active is False


def test_prefect_yaml_is_valid_for_prefect():
    from prefect.cli.deploy._models import PrefectYamlModel

    data = yaml.safe_load(stack.PREFECT_YAML.read_text())
    model = PrefectYamlModel.model_validate(data)
    assert [d.name for d in model.deployments] == [s.name for s in stack.load_deployment_specs()]


def test_writers_share_the_one_at_a_time_queue():
    specs = {s.name: s for s in stack.load_deployment_specs()}
    assert specs["watch-landing"].work_queue != stack.WRITERS_QUEUE
    writers = [
        "pipeline",
        "ingest",
        "nightly-transform",
        "weekly-retrain",
        "daily-scoring",
        "export",
    ]
    for name in writers:
        assert specs[name].work_queue == stack.WRITERS_QUEUE, name
        assert specs[name].work_pool == "process"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("schedules: {watch-landing: [{cron: 'not a cron'}]}", "cron"),
        ("schedules: {watch-landing: [{cron: '0 2 * * *', interval_seconds: 5}]}", "exactly one"),
        ("schedules: {watch-landing: [{}]}", "exactly one"),
        ("schedules: {watch-landing: [{interval_seconds: 0}]}", "greater than 0"),
        ("schedule: {}", "Extra inputs"),
    ],
)
def test_bad_schedules_are_explained(tmp_path, text, problem):
    path = tmp_path / "schedules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        stack.load_schedules(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_schedule_for_an_unknown_deployment_is_refused(tmp_path):
    path = tmp_path / "schedules.yaml"
    path.write_text("schedules: {nightly-transfrom: [{cron: '0 2 * * *'}]}")
    with pytest.raises(ConfigError, match="nightly-transfrom"):
        stack.load_deployment_specs(schedules=stack.load_schedules(path))
