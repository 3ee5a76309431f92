"""The generator writes the same bytes for the same seed, scale and sample as before its split.

`fixtures/synth_bytes.json` holds the SHA-256 and row count of every file the generator
wrote for a few seeds, samples and small scales: CSV and ZIP output, several chunks (with
one and two worker processes) and the CLI's broken copies (`--corrupt all`). The hashes
were recorded from the pre-split generator (`cms_pipeline/synth/generator.py` as of commit
71b7bb3, repository HEAD 88937a8) with `python tests/unit/test_synth_bytes.py --record`,
and recorded again, identical, from a snapshot of commit 7b80a61 (the last one with the
single-module generator); the fixture's `_about` entry says the same.

A changed hash means the generator's output changed. Re-record only for an intended change
of the output (the calibration file, the contracts or the generator's model), and say so
in the commit: `--record` writes the commit it ran at into `_about`. For ZIPs the CSV inside is hashed and
the member's name, timestamp and compression are compared: deflate's bytes depend on the
zlib build, not on the generator.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cms_pipeline.cli import app
from cms_pipeline.synth import generator

FIXTURE = Path(__file__).parent / "fixtures" / "synth_bytes.json"
ABOUT = "_about"  # the fixture's note on where its hashes came from

# name, scale, seed, sample, zip, chunk size (None: the default), workers
CASES = [
    ("seed0", 0.001, 0, 1, False, None, 1),
    ("seed1", 0.001, 1, 1, False, None, 1),
    ("seed2_sample3", 0.001, 2, 3, False, None, 1),
    ("seed7_scale0.01", 0.01, 7, 1, False, None, 1),
    ("seed4_zip", 0.001, 4, 2, True, None, 1),
    ("seed5_chunks40", 0.001, 5, 1, False, 40, 1),
    ("seed5_chunks40_workers2", 0.001, 5, 1, False, 40, 2),
]
CLI_CASE = ("cli_seed3_corrupt_all", ["--scale", "0.001", "--seed", "3", "--workers", "1",
                                      "--corrupt", "all"])  # fmt: skip


def _digest(path: Path) -> dict:
    """SHA-256 of a CSV, or of the CSV inside a ZIP plus that member's metadata."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            (info,) = zf.infolist()
            data = zf.read(info)
            member = [info.filename, list(info.date_time), info.compress_type]
        return {"sha256": hashlib.sha256(data).hexdigest(), "member": member}
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _digests(folder: Path) -> dict[str, dict]:
    return {
        str(p.relative_to(folder)): _digest(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in (".csv", ".zip")
    }


@contextmanager
def _chunk_size(size: int | None):
    """Beneficiaries per chunk (read when chunks are planned); None keeps the default."""
    before = generator.CHUNK_BENES
    generator.CHUNK_BENES = size or before
    try:
        yield
    finally:
        generator.CHUNK_BENES = before


def run_case(case: tuple, out: Path) -> dict:
    name, scale, seed, sample, as_zip, chunk, workers = case
    with _chunk_size(chunk):
        files = generator.generate_sample(out, scale, seed, sample, as_zip, workers=workers)
    found = _digests(out)
    for file_name, info in files.items():
        found[file_name]["rows"] = info["rows"]
    return found


def run_cli(case: tuple, out: Path) -> dict:
    name, args = case
    result = CliRunner().invoke(app, ["synth", *args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return _digests(out)


def record() -> None:
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            cases[case[0]] = run_case(case, Path(tmp) / case[0])
        cases[CLI_CASE[0]] = run_cli(CLI_CASE, Path(tmp) / CLI_CASE[0])
    git = ["git", "-C", str(Path(__file__).parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "cms_pipeline", "config"],
                           capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    cases[ABOUT] = (
        f"SHA-256 per file written by the generator at commit {head}"
        + (" with uncommitted changes" if dirty else "")
        + ", recorded with `python tests/unit/test_synth_bytes.py --record`. A changed hash "
        "means the output changed: only for a deliberate change, stated in the commit."
    )
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(cases, indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE}: {sum(len(c) for k, c in cases.items() if k != ABOUT)} files")


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads(FIXTURE.read_text())


def test_fixture_holds_exactly_the_cases(expected):
    """A case added or renamed here is recorded too; none is left over from an old run."""
    assert set(expected) == {c[0] for c in CASES} | {CLI_CASE[0], ABOUT}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_generator_bytes_unchanged(case, expected, tmp_path):
    assert run_case(case, tmp_path) == expected[case[0]]


def test_cli_with_broken_copies_bytes_unchanged(expected, tmp_path):
    assert run_cli(CLI_CASE, tmp_path) == expected[CLI_CASE[0]]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="Rewrite the fixture.")
    if parser.parse_args().record:
        record()
    else:
        sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
