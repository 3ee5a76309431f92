-- Rows of this build's bronze.prescription_drug_events snapshot that a later delivery of the same PDE_ID supersedes.
{{ stg_superseded('prescription_drug_events') }}
