SHOW TBLPROPERTIES {database}.{table}
