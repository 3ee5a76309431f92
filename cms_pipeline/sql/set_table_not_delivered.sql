-- A bronze table no delivery of its kind has reached yet: empty, typed from its contract,
-- so every model downstream builds (empty) instead of failing on a missing relation.
ALTER TABLE {database}.{table} SET TBLPROPERTIES ('cms.delta_version' = '{not_delivered}', 'cms.delta_uri' = '{location}')
