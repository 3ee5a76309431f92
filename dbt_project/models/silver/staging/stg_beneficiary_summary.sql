-- bronze.beneficiary_summary deduplicated, typed and decoded, as config/mappings/beneficiary_summary.yaml says.
{{ stg_from_mapping('beneficiary_summary') }}
