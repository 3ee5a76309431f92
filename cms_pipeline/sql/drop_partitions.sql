ALTER TABLE {database}.{table} DROP IF EXISTS {partitions}
