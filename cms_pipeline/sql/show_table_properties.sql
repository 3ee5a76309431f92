-- Table properties of a catalog table (bronze tables carry cms.delta_version).
SHOW TBLPROPERTIES {database}.{table}
