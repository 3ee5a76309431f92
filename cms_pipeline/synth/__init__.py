"""Synthetic CMS DE-SynPUF files at any scale, in CMS's exact layouts.

- `calibrate` derives `config/synth/calibration.json` from the real rows in `data/synpuf`
  (`python -m cms_pipeline.synth.calibrate`); `calibration` loads it as typed sections of
  `Categorical` distributions and quantile tables.
- `model`: arrays derived from the calibration once, and a sample's code pools.
- One module per file kind, each drawing events (numpy) and rendering them as CMS rows:
  `beneficiary` (people, their years and deaths; the yearly summaries), `inpatient`,
  `outpatient`, `carrier`, `pde`. Shared: `draws` (calendar, counts, days, codes, claim
  IDs) and `render` (amounts, dates, codes, contract column order; no random draws).
- `layout`: file names, header bytes, CRLF rows, CMS-style ZIPs (one CSV each).
- `generator`: `generate(out, scale, seed, samples)` writes the eight files per sample,
  chunk by chunk (bounded memory, optional worker processes, same bytes for a seed).
- `corruptions`: `corrupt_file(path_in, path_out, kind, seed)` breaks a copy of any CMS
  CSV or ZIP in one known way for ingestion tests.

Calibrated from real rows: demographics, state/county, coverage months, chronic condition
profiles (whole real profiles, so co-occurrence is kept) and their yearly changes, ESRD,
deaths (counts at scale 1.0 follow CMS's published file sizes), inpatient stays per
beneficiary-year and their rise with conditions, lengths of stay, payments by length of
stay, deductibles by year, code frequencies (ICD-9 diagnoses and procedures, DRG, HCPCS).
Assumed (no real volume here): outpatient yearly rate (from CMS's published size) and its
condition effects, all carrier and PDE distributions; see the `assumed` entries of the
calibration file.
"""
