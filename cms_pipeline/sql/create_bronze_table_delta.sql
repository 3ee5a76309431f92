-- On clusters with Delta in Spark: the table is the Delta log itself, pinned by version
-- with `VERSION AS OF` where needed.
CREATE TABLE IF NOT EXISTS {database}.{table}
USING delta
LOCATION '{location}'
