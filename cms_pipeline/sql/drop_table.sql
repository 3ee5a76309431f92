-- Dropping an EXTERNAL table removes its definition only; the Delta files stay.
DROP TABLE {database}.{table}
