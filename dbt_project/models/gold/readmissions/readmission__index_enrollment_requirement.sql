-- Rule (optional, off by default): as in CMS's measure, an index admission may be
-- required to be of a beneficiary aged 65 or over on admission
-- (var readmission_require_age_65) and enrolled in Part A for the 12 months before the
-- admission (var readmission_require_prior_part_a_12m). DE-SynPUF gives Part A coverage
-- as a count of months per summary year, not which months: the 12 months are taken as
-- covered when the previous year's summary has 12 Part A months and the admission year's
-- has at least (admission month - 1). A requirement that is off always holds.
with {{ import_refs(
    admissions='readmission__transfers_merged',
    people='dim_beneficiary',
    summaries='beneficiary',
) }},

final as (

    select
        admissions.admission_id,
        cast(floor(months_between(admissions.admission_date, people.birth_date) / 12) as int)
            as age_at_admission,
        coalesce(
            prior_year.part_a_coverage_months >= 12
            and admission_year.part_a_coverage_months >= month(admissions.admission_date) - 1,
            false
        ) as has_prior_part_a_12m
    from admissions
    left join people
        on people.desynpuf_id = admissions.desynpuf_id
    left join summaries as prior_year
        on prior_year.desynpuf_id = admissions.desynpuf_id
            and prior_year.beneficiary_year = year(admissions.admission_date) - 1
    left join summaries as admission_year
        on admission_year.desynpuf_id = admissions.desynpuf_id
            and admission_year.beneficiary_year = year(admissions.admission_date)

)

select
    *,
    (not {{ var('readmission_require_age_65', false) }} or coalesce(age_at_admission >= 65, false))
    and (not {{ var('readmission_require_prior_part_a_12m', false) }} or has_prior_part_a_12m)
        as meets_enrollment_requirement
from final
