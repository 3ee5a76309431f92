-- One row per used line of a carrier claim (the 13 numbered line groups unpivoted): the
-- stored lines (carrier_lines_by_batch) of this build's snapshot, latest delivery of each claim.
{{ config(materialized='view') }}
{{ latest_deliveries(
    'carrier_claims', 'carrier_lines_by_batch',
    columns=unpivot_columns('carrier_claims', 'carrier_lines', ['claim_id', 'desynpuf_id', 'claim_start_date'])
        + ['is_allowed']) }}
