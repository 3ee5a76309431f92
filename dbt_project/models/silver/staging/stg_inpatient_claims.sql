-- bronze.inpatient_claims deduplicated, typed and decoded, as config/mappings/inpatient_claims.yaml says.
{{ stg_from_mapping('inpatient_claims') }}
