-- Observed 30-day unplanned readmission rates (CMS hospital-wide measure rules, not risk
-- standardised) by discharge year, state and specialty cohort, with numerator and
-- denominator so a reader can recompute each rate: denominator = index admissions,
-- numerator = those readmitted (is_readmitted_30d). Rows for every (year, state, cohort)
-- and the roll-ups over states and/or cohorts, marked 'ALL'. State = the beneficiary's
-- state in the summary of the discharge year (else the latest summary's state).
with {{ import_refs(
    admissions='inpatient_admissions',
    summaries='beneficiary',
    people='dim_beneficiary',
) }},

index_admissions as (

    select
        admissions.discharge_year,
        coalesce(summaries.state_code, people.state_code) as state_code,
        admissions.specialty_cohort,
        admissions.is_readmitted_30d
    from admissions
    left join summaries
        on summaries.desynpuf_id = admissions.desynpuf_id
            and summaries.beneficiary_year = admissions.discharge_year
    left join people
        on people.desynpuf_id = admissions.desynpuf_id
    where admissions.is_index_admission

),

final as (

    select
        discharge_year,
        case when grouping(state_code) = 1 then 'ALL' else state_code end as state_code,
        case when grouping(specialty_cohort) = 1 then 'ALL' else specialty_cohort end
            as specialty_cohort,
        count(*) as index_admission_count,
        count_if(is_readmitted_30d) as readmission_count,
        cast(count_if(is_readmitted_30d) / count(*) as decimal(9, 6)) as readmission_rate
    from index_admissions
    group by grouping sets (
        (discharge_year, state_code, specialty_cohort),
        (discharge_year, state_code),
        (discharge_year, specialty_cohort),
        (discharge_year)
    )

)

select * from final
