-- Rule: one hospital stay per inpatient claim, as its first segment (SEGMENT 1) says:
-- admission (or claim start) and discharge (or claim end) dates, DRG, provider, payment
-- and principal diagnosis (ICD9_DGNS_CD_1) of segment 1. A split claim's later segments
-- add nothing: on the real samples segment 2 rows carry no claim dates, no diagnoses, DRG
-- OTH/000 and an admission date earlier than segment 1's, and the summary file pays
-- segment 1 only (see fct_claims and analyses/split_claim_segments.sql).
with {{ import_refs(inpatient='inpatient_claims') }},

final as (

    select
        claim_id,
        min_by(desynpuf_id, segment) as desynpuf_id,
        min_by(coalesce(admission_date, claim_start_date), segment) as admission_date,
        min_by(coalesce(discharge_date, claim_end_date), segment) as discharge_date,
        min_by(drg_code, segment) as drg_code,
        min_by(provider_id, segment) as provider_id,
        min_by(principal_icd9_dgns_cd, segment) as principal_icd9_dgns_cd,
        min_by(coalesce(payment_amount, 0), segment) as payment_amount
    from inpatient
    group by claim_id

)

select * from final
