-- bronze.prescription_drug_events typed and decoded per batch, kept across builds (see macros/incremental/batch_store.sql).
{{ stg_by_batch('prescription_drug_events') }}
