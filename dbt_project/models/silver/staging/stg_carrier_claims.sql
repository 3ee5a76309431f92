-- bronze.carrier_claims deduplicated, typed and decoded, as config/mappings/carrier_claims.yaml says.
{{ stg_from_mapping('carrier_claims') }}
