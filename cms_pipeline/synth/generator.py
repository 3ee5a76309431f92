"""Synthetic DE-SynPUF samples: all eight CMS files, any scale, same bytes for the same seed.

A sample is generated in chunks of beneficiaries (sorted IDs, so every file comes out
sorted by DESYNPUF_ID as CMS's are); each chunk draws its people, their three years,
deaths and all their claims, then appends rows to the eight files. Memory is bounded by
the chunk, not the scale. Each chunk has its own random stream (seed, sample, chunk),
so output depends only on the seed, the scale and the sample number.

Each file kind has its module (`beneficiary`, `inpatient`, `outpatient`, `carrier`, `pde`)
that draws events (numpy, `draws`) and renders them as CMS text (`render`); this module
plans the chunks, runs them (optionally in worker processes) and writes the files.
What is drawn from the calibration (real rows) and what is assumed is stated in
`config/synth/calibration.json`. The built-in signal: admissions, readmissions and costs
rise with CHF, CKD, COPD, diabetes, a persistent per-person frailty and prior admissions.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from cms_pipeline.config import SourceContract, load_settings
from cms_pipeline.synth import beneficiary, carrier, inpatient, outpatient, pde
from cms_pipeline.synth.calibration import Calibration, load_calibration
from cms_pipeline.synth.draws import YEARS, ClaimIds, allocate
from cms_pipeline.synth.layout import FILE_KINDS, KINDS, header_bytes, rows_bytes, zip_file
from cms_pipeline.synth.model import Model, Pools

CHUNK_BENES = 5_000  # fixed: changing it changes the bytes for a seed
MIN_SCALE, MAX_SCALE = 0.001, 20.0
POOLS_STREAM = 10**6  # the random stream of a sample's code pools (chunks use 0, 1, ...)


class SampleWriter:
    """Generates one sample chunk by chunk: the rows of its eight files."""

    def __init__(self, model: Model, contracts: dict[str, SourceContract], seed: int, sample: int):
        self.model, self.contracts, self.seed, self.sample = model, contracts, seed, sample
        self.pools = Pools.build(self._rng(POOLS_STREAM), model)

    def _rng(self, chunk: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.sample, chunk])

    def _ids(self, kind_module, index: int) -> ClaimIds:
        return ClaimIds(kind_module.CLAIM_ID_PREFIX, self.sample, index)

    def _contract(self, key: str) -> SourceContract:
        return self.contracts[KINDS[key].contract]

    def chunk(self, index: int, ids: np.ndarray, deaths: list[int]) -> dict[str, pa.Table]:
        """The chunk's rows of each file, by file kind key (bene_2008 ... pde).

        The kinds draw from one random stream in a fixed order: people, inpatient,
        outpatient, carrier, drug events.
        """
        rng = self._rng(index)
        people = beneficiary.draw_people(self.model, rng, ids, deaths)
        common = (self.model, self.pools, people, rng)
        ip, ip_spending = inpatient.inpatient(
            *common, self._ids(inpatient, index), self._contract("inpatient")
        )
        op, op_spending = outpatient.outpatient(
            *common, self._ids(outpatient, index), self._contract("outpatient")
        )
        car, car_person, car_spending = carrier.carrier(
            *common, self._ids(carrier, index), self._contract("carrier_a")
        )
        drugs = pde.drug_events(*common, self._ids(pde, index), self._contract("pde"))
        spending = {"IP": ip_spending, "OP": op_spending, "CAR": car_spending}
        out = {
            f"bene_{year}": beneficiary.render_year(
                self.model, people, t, spending, self._contract(f"bene_{year}")
            )
            for t, year in enumerate(YEARS)
        }
        # carrier claims are split over two files by beneficiary ID (A: first half of the ID
        # space); rows are sorted by ID, so A is a prefix of the chunk's carrier rows
        n_a = int(np.searchsorted(car_person, np.searchsorted(people.ids, "8")))
        out.update(
            inpatient=ip,
            outpatient=op,
            carrier_a=car.slice(0, n_a),
            carrier_b=car.slice(n_a),
            pde=drugs,
        )
        return out


def plan_sample(calib: Calibration, scale: float) -> tuple[int, list[int]]:
    """Beneficiaries in 2008 and deaths per year for a scale (1.0 = CMS's full sample)."""
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise ValueError(f"scale {scale} out of range: use {MIN_SCALE} to {MAX_SCALE}")
    full = calib.full_sample.beneficiary
    n = [max(1, round(full[year] * scale)) for year in YEARS]
    n[1], n[2] = min(n[1], n[0]), min(n[2], n[1])
    death_2010 = round(n[2] * calib.beneficiary.death_rate[2010])
    return n[0], [n[0] - n[1], n[1] - n[2], death_2010]


class Job(NamedTuple):
    """One chunk of a sample: its beneficiaries' count and ID range, and deaths per year."""

    seed: int
    sample: int
    chunk: int
    n_benes: int
    lo: int  # IDs in [lo, hi) of the 64-bit ID space
    hi: int
    deaths: list[int]


def _chunk_ids(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """n distinct sorted IDs in [lo, hi) of the 64-bit ID space."""
    ids = np.unique(rng.integers(lo, hi, n, dtype=np.uint64, endpoint=False))
    while len(ids) < n:
        extra = rng.integers(lo, hi, n - len(ids), dtype=np.uint64, endpoint=False)
        ids = np.unique(np.concatenate([ids, extra]))
    return ids


@dataclass
class _ProcessState:
    """Per process: the model and contracts (set before forking) and the current sample's
    writer, kept so that its code pools are drawn once per sample, not once per chunk."""

    model: Model | None = None
    contracts: dict[str, SourceContract] | None = None
    writer: SampleWriter | None = None


_PROCESS = _ProcessState()


def _init_worker(calib: Calibration, contracts: dict[str, SourceContract]) -> None:
    _PROCESS.model, _PROCESS.contracts, _PROCESS.writer = Model.of(calib), contracts, None


def _chunk_bytes(job: Job) -> dict[str, tuple[int, bytes]]:
    """One chunk's rows for the eight files (runs in a worker process)."""
    writer = _PROCESS.writer
    if writer is None or (writer.seed, writer.sample) != (job.seed, job.sample):
        writer = _PROCESS.writer = SampleWriter(
            _PROCESS.model, _PROCESS.contracts, job.seed, job.sample
        )
    rng = np.random.default_rng([job.seed, job.sample, job.chunk, 7])
    ids = _chunk_ids(rng, job.n_benes, job.lo, job.hi)
    tables = writer.chunk(job.chunk, ids, job.deaths)
    return {key: (t.num_rows, rows_bytes(t)) for key, t in tables.items()}


def _jobs(calib: Calibration, scale: float, seed: int, sample: int) -> list[Job]:
    n, deaths = plan_sample(calib, scale)
    n_chunks = -(-n // CHUNK_BENES)
    sizes = allocate(n, np.ones(n_chunks))
    chunk_deaths = np.stack([allocate(d, sizes.astype(float)) for d in deaths], axis=1)
    bounds = [c * 2**64 // n_chunks for c in range(n_chunks + 1)]
    return [
        Job(seed, sample, c, int(sizes[c]), bounds[c], min(bounds[c + 1], 2**64 - 1),
            [int(x) for x in chunk_deaths[c]])
        for c in range(n_chunks)
    ]  # fmt: skip


def _run_jobs(
    jobs: list[Job], calib: Calibration, contracts: dict[str, SourceContract], workers: int
) -> Iterator[dict[str, tuple[int, bytes]]]:
    """Chunk results in order; with workers > 1, a bounded number in flight at once."""
    _init_worker(calib, contracts)
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield _chunk_bytes(job)
        return
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, ctx, _init_worker, (calib, contracts)) as pool:
        pending = []
        for job in jobs:
            pending.append(pool.submit(_chunk_bytes, job))
            if len(pending) > workers:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()


def generate_sample(
    out_dir: Path | str,
    scale: float,
    seed: int,
    sample: int,
    as_zip: bool = False,
    calib: Calibration | None = None,
    contracts: dict[str, SourceContract] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> dict[str, dict]:
    """Write the eight files of one sample; returns {file name: {"rows": n, "path": ...}}."""
    calib = calib or load_calibration()
    contracts = contracts or load_settings().sources
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = _jobs(calib, scale, seed, sample)
    paths = {k.key: out_dir / k.file_name(sample) for k in FILE_KINDS}
    rows = dict.fromkeys(paths, 0)
    handles = {key: path.open("wb") for key, path in paths.items()}
    try:
        for key, fh in handles.items():
            fh.write(header_bytes(contracts[KINDS[key].contract]))
        for done, chunk in enumerate(_run_jobs(jobs, calib, contracts, workers), start=1):
            for key, (n_rows, data) in chunk.items():
                handles[key].write(data)
                rows[key] += n_rows
            if on_progress:
                on_progress(done, len(jobs))
    finally:
        for fh in handles.values():
            fh.close()
    result = {}
    for key, path in paths.items():
        if as_zip:
            zpath = path.with_suffix(".zip")
            zip_file(path, zpath)
            path.unlink()
            path = zpath
        result[path.name] = {"kind": key, "sample": sample, "rows": rows[key], "path": str(path)}
    return result


def generate(
    out_dir: Path | str,
    scale: float = 0.01,
    seed: int = 0,
    samples: int = 1,
    as_zip: bool = False,
    on_progress: Callable[[int, int, int], None] | None = None,
    workers: int = 1,
) -> dict[str, dict]:
    """Samples 1..`samples`, each a full set of eight files in `out_dir`."""
    calib = load_calibration()
    contracts = load_settings().sources
    result = {}
    for sample in range(1, samples + 1):
        progress = None
        if on_progress:

            def progress(done, total, s=sample):
                on_progress(s, done, total)

        result.update(
            generate_sample(
                out_dir, scale, seed, sample, as_zip, calib, contracts, progress, workers
            )
        )
    return result
