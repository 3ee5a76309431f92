"""Difference report of a new bronze batch against the table's previous state.

Everything is computed from profiles (see `profiling`) and key sets, so the previous
state is read once, streaming, or not at all when its profile is stored:

- row counts before / after the batch;
- keys: `new` = keys of the batch not in the table before it (`table_keys`);
  `disappeared` = keys of the previous delivery of the same file (`previous_delivery_keys`,
  same file name or kind, chosen by the caller) that the new batch no longer has;
- per column: null-rate shift; for integer, decimal and date columns mean/std shift and
  PSI and KS statistics on the profiles' fixed-edge histograms; for text columns the
  share of top values and, for code columns whose values all fit in the top list, PSI.

Each shift past its threshold (`Thresholds`) becomes a flag on the column.

    compare.py  diff_batch (the entry point), key changes, profile_state (the previous state)
    shifts.py   one column's shift between two profiles: PSI, KS, mean, null rate, top shares
    report.py   the report (BatchDiff, ColumnShift, KeyChanges, Thresholds) as a dict, as
                rows of the `batch_diffs` Delta table, and as lines for the CLI
"""
