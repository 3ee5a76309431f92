-- Rule (CMS same-day readmission to the same hospital): when the beneficiary's next
-- hospitalization starts on this one's discharge day, at the same provider, for the same
-- condition (same principal-diagnosis CCS category), this hospitalization is not an
-- index admission; the later one may be (it is then not a readmission of this one).
-- For a different condition the later stay is an ordinary readmission.
-- Source: CMS hospital-wide readmission methodology as summarised by the Tuva Project
-- (tuva-health/docs docs/hospital-readmissions.md, "Not a Same-day Readmission").
with {{ import_refs(
    admissions='readmission__transfers_merged',
    diagnosis='readmission__principal_diagnosis_ccs',
) }},

with_condition as (

    select
        admissions.admission_id,
        admissions.desynpuf_id,
        admissions.admission_date,
        admissions.discharge_date,
        admissions.provider_id,
        admissions.discharge_provider_id,
        diagnosis.principal_ccs_category
    from admissions
    left join diagnosis
        on diagnosis.admission_id = admissions.admission_id

),

with_next as (

    select
        *,
        lead(admission_date) over w as next_admission_date,
        lead(provider_id) over w as next_provider_id,
        lead(principal_ccs_category) over w as next_principal_ccs_category
    from with_condition
    window w as (partition by desynpuf_id order by admission_date, admission_id)

),

final as (

    select
        admission_id,
        coalesce(
            next_admission_date = discharge_date
            and next_provider_id = discharge_provider_id
            and next_principal_ccs_category = principal_ccs_category,
            false
        ) as is_followed_by_same_day_same_condition
    from with_next

)

select * from final
