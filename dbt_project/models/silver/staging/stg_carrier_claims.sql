-- bronze.carrier_claims deduplicated, typed and decoded, as config/mappings/carrier_claims.yaml says:
-- the stored batches of this build's snapshot (carrier_claims_by_batch), latest delivery of each claim.
{{ config(materialized='view') }}
{{ latest_deliveries('carrier_claims', 'carrier_claims_by_batch') }}
