-- bronze.outpatient_claims deduplicated, typed and decoded, as config/mappings/outpatient_claims.yaml says.
{{ stg_from_mapping('outpatient_claims') }}
