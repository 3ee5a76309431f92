-- A managed table: its definition and its files.
DROP TABLE IF EXISTS {table}
