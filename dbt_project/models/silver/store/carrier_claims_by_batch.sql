-- bronze.carrier_claims typed and decoded per batch, kept across builds (see macros/incremental/batch_store.sql).
{{ stg_by_batch('carrier_claims') }}
