-- Rule: one hospital stay per inpatient claim; the segments of a claim are one stay,
-- from its earliest admission (or claim start) to its latest discharge (or claim end).
with {{ import_refs(inpatient='inpatient_claims') }},

final as (

    select
        claim_id,
        min_by(desynpuf_id, segment) as desynpuf_id,
        min(coalesce(admission_date, claim_start_date)) as admission_date,
        max(coalesce(discharge_date, claim_end_date)) as discharge_date,
        max_by(drg_code, segment) as drg_code,
        min_by(provider_id, segment) as provider_id,
        sum(coalesce(payment_amount, 0)) as payment_amount
    from inpatient
    group by claim_id

)

select * from final
