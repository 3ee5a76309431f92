-- The public predictions name becomes a view on one version table (models_ml.batch): one
-- metastore update, so a reader sees the old version or the new one, never a half table.
-- The property names the version it reads, so the next replacement keeps that one.
CREATE OR REPLACE VIEW {view}
TBLPROPERTIES ('cms.predictions_version' = '{table}')
AS SELECT * FROM {table}
