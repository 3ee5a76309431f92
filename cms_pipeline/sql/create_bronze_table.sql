-- A bronze Delta table as Spark sees it: the Parquet files of committed batch folders.
-- Partitions are added from the Delta log, never discovered (no MSCK REPAIR), so
-- folders of uncommitted writes are never read.
CREATE TABLE IF NOT EXISTS {database}.{table} ({columns}, _batch_id STRING)
USING parquet
PARTITIONED BY (_batch_id)
LOCATION '{location}'
