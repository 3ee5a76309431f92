"""Streaming profiles of bronze batches, with bounded memory per column.

- `hashing`: stable 64-bit hashes of text values and of key tuples, straight from the
  Arrow buffers.
- `sketches`: the bounded per-column state (distinct-count sketch, top-value sketch,
  running moments) and how far off its approximations can be.
- `histograms`: fixed-edge bins, the same for every batch, so histograms compare.
- `conformance`: what text each logical type accepts, and its parsed values.
- `records`: the results (`ColumnProfile`, `KeyCheck`, `BatchProfile`) and their
  dict, JSON and Arrow forms.
- `profilers`: the streaming profilers (`Profiler`, `ColumnProfiler`, `KeyTracker`) and
  the key sets (`KeySet`) that batch differences compare.

The contract's expectations checked on a profile live with ingest validation, in
`cms_pipeline.ingest.expectations`. Import each name from the module that holds it.
"""
