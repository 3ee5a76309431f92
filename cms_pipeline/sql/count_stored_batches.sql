-- Rows a silver build added to one store model, per bronze batch (cms_pipeline.publish.silver_store).
SELECT _batch_id, count(*) AS row_count FROM {relation} WHERE _stored_by_build = '{build_id}' GROUP BY _batch_id
