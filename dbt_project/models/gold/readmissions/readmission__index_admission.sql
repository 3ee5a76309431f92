-- An index admission meets every requirement and no exclusion (CMS HWR index cohort):
-- alive at discharge, not transferred out, valid dates, a fully observed 30-day window,
-- in a specialty cohort, no excluded principal diagnosis (psychiatric, rehabilitation,
-- cancer treatment), not followed by a same-day same-condition stay at the same
-- provider, and, when switched on by vars, aged 65+ with 12 months of prior Part A.
with {{ import_refs(
    admissions='readmission__transfers_merged',
    discharge_requirement='readmission__index_discharge_requirement',
    time_requirement='readmission__index_time_requirement',
    enrollment_requirement='readmission__index_enrollment_requirement',
    same_day='readmission__same_day_readmission',
    exclusion='readmission__exclusion',
    cohort='readmission__specialty_cohort',
) }},

final as (

    select
        admissions.admission_id,
        discharge_requirement.is_alive_at_discharge,
        discharge_requirement.is_transferred_out,
        discharge_requirement.has_valid_dates,
        time_requirement.is_window_observed,
        enrollment_requirement.age_at_admission,
        enrollment_requirement.has_prior_part_a_12m,
        enrollment_requirement.meets_enrollment_requirement,
        same_day.is_followed_by_same_day_same_condition,
        exclusion.principal_icd9_dgns_cd,
        exclusion.principal_ccs_category,
        exclusion.exclusion_reason,
        cohort.specialty_cohort,
        discharge_requirement.is_alive_at_discharge
        and not discharge_requirement.is_transferred_out
        and discharge_requirement.has_valid_dates
        and time_requirement.is_window_observed
        and enrollment_requirement.meets_enrollment_requirement
        and not same_day.is_followed_by_same_day_same_condition
        and exclusion.exclusion_reason is null
        and cohort.specialty_cohort is not null as is_index_admission
    from admissions
    inner join discharge_requirement
        on discharge_requirement.admission_id = admissions.admission_id
    inner join time_requirement
        on time_requirement.admission_id = admissions.admission_id
    inner join enrollment_requirement
        on enrollment_requirement.admission_id = admissions.admission_id
    inner join same_day
        on same_day.admission_id = admissions.admission_id
    inner join exclusion
        on exclusion.admission_id = admissions.admission_id
    inner join cohort
        on cohort.admission_id = admissions.admission_id

)

select * from final
