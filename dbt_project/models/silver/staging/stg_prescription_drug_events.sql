-- bronze.prescription_drug_events deduplicated, typed and decoded, as config/mappings/prescription_drug_events.yaml says.
{{ stg_from_mapping('prescription_drug_events') }}
