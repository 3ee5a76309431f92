-- bronze.prescription_drug_events deduplicated, typed and decoded, as config/mappings/prescription_drug_events.yaml says:
-- the stored batches of this build's snapshot (prescription_drug_events_by_batch), latest delivery of each event.
{{ config(materialized='view') }}
{{ latest_deliveries('prescription_drug_events', 'prescription_drug_events_by_batch') }}
