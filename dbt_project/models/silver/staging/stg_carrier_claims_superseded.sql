-- Rows of this build's bronze.carrier_claims snapshot that a later delivery of the same CLM_ID supersedes.
{{ stg_superseded('carrier_claims') }}
