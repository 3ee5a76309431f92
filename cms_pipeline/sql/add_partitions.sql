ALTER TABLE {database}.{table} ADD IF NOT EXISTS {partitions}
