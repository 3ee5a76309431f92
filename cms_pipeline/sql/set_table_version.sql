ALTER TABLE {database}.{table} SET TBLPROPERTIES ('cms.delta_version' = '{version}', 'cms.delta_uri' = '{location}')
