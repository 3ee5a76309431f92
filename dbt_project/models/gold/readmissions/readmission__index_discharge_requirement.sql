-- Rule: an index admission must end with the beneficiary alive: no death date on or
-- before the discharge date (DE-SynPUF has no discharge status; the death date stands in
-- for "discharged expired"), and dates that make sense (discharge not before admission).
with {{ import_refs(
    admissions='readmission__transfers_merged',
    beneficiaries='dim_beneficiary',
) }},

final as (

    select
        admissions.admission_id,
        coalesce(beneficiaries.death_date > admissions.discharge_date, true)
            as is_alive_at_discharge,
        admissions.discharge_date >= admissions.admission_date as has_valid_dates
    from admissions
    left join beneficiaries
        on beneficiaries.desynpuf_id = admissions.desynpuf_id

)

select * from final
