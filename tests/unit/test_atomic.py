"""Atomic state files: a write that fails or is killed leaves the old file whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from cms_pipeline import atomic
from cms_pipeline.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic

OLD = {"build_id": "old", "models": ["a", "b"]}


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_and_replaces_whole_files(tmp_path):
    path = tmp_path / "state" / "history.json"  # the folder is made
    write_json_atomic(path, OLD, indent=2)
    assert json.loads(path.read_text()) == OLD
    write_text_atomic(path, "new")
    assert path.read_text() == "new"
    assert _leftovers(path.parent) == []


def test_new_file_has_the_mode_open_would_give(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    written = write_text_atomic(tmp_path / "atomic", "x")
    assert written.stat().st_mode == plain.stat().st_mode


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_crash_before_the_rename_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch, failing):
    path = tmp_path / "history.json"
    write_json_atomic(path, OLD)

    def crash(*args):
        raise OSError(f"disk gone during {failing}")

    monkeypatch.setattr(atomic.os, failing, crash)
    with pytest.raises(OSError, match="disk gone"):
        write_json_atomic(path, {"build_id": "new"})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == OLD
    assert _leftovers(tmp_path) == []


def test_a_value_that_cannot_be_serialised_never_touches_the_file(tmp_path):
    path = tmp_path / "history.json"
    write_json_atomic(path, OLD)
    with pytest.raises(TypeError):
        write_json_atomic(path, {"when": object()})
    assert json.loads(path.read_text()) == OLD
    assert _leftovers(tmp_path) == []


def test_a_process_killed_between_write_and_rename_leaves_the_old_file(tmp_path):
    """A real SIGKILL of a real process after its temporary file is complete and synced,
    before the rename: the target still holds the old content, whole."""
    path = tmp_path / "history.json"
    write_json_atomic(path, OLD)
    child = (
        "import os, signal, sys\n"
        "from cms_pipeline import atomic\n"
        "atomic.os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        "atomic.write_bytes_atomic(sys.argv[1], b'{\"build_id\": \"new\"' + b' ' * 1_000_000)\n"
    )
    done = subprocess.run([sys.executable, "-c", child, str(path)], timeout=60)
    assert done.returncode == -signal.SIGKILL
    assert json.loads(path.read_text()) == OLD
    # the killed writer's temporary file is left, complete, and never read as the state
    (left,) = _leftovers(tmp_path)
    assert left.startswith(".history.json.") and os.path.getsize(tmp_path / left) > 1_000_000


def test_bytes_are_written_as_given(tmp_path):
    data = bytes(range(256)) * 10
    assert write_bytes_atomic(tmp_path / "blob", data).read_bytes() == data
