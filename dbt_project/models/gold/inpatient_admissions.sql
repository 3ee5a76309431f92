-- One row per hospitalization (inpatient claims, each as its segment 1, with transfers
-- merged: readmission__claim_stays, readmission__transfers_merged), with the CMS
-- hospital-wide-readmission rules of models/gold/readmissions: index-admission
-- requirements and exclusions, specialty cohort, planned readmissions (CMS Planned
-- Readmission Algorithm v4) and 30-day unplanned readmission flags.
with {{ import_refs(
    admissions='readmission__transfers_merged',
    index_admissions='readmission__index_admission',
    planned='readmission__planned',
    flags='readmission__readmission_flags',
) }},

final as (

    select
        admissions.admission_id,
        admissions.desynpuf_id,
        admissions.admission_date,
        admissions.discharge_date,
        year(admissions.discharge_date) as discharge_year,
        datediff(admissions.discharge_date, admissions.admission_date) as length_of_stay_days,
        admissions.claim_count,
        admissions.claim_count > 1 as is_transfer_merged,
        admissions.drg_code,
        admissions.provider_id,
        admissions.discharge_provider_id,
        cast(admissions.payment_amount as decimal(18, 2)) as payment_amount,
        index_admissions.principal_icd9_dgns_cd,
        index_admissions.principal_ccs_category,
        index_admissions.specialty_cohort,
        index_admissions.age_at_admission,
        index_admissions.is_alive_at_discharge,
        index_admissions.is_transferred_out,
        index_admissions.has_valid_dates,
        index_admissions.is_window_observed,
        index_admissions.has_prior_part_a_12m,
        index_admissions.meets_enrollment_requirement,
        index_admissions.is_followed_by_same_day_same_condition,
        index_admissions.exclusion_reason,
        index_admissions.is_index_admission,
        planned.planned_rule,
        planned.is_planned,
        flags.next_admission_id,
        flags.next_admission_date,
        flags.days_to_next_admission,
        flags.is_next_admission_planned,
        coalesce(flags.is_readmitted_30d, false) as is_readmitted_30d,
        flags.is_readmission
    from admissions
    inner join index_admissions
        on index_admissions.admission_id = admissions.admission_id
    inner join planned
        on planned.admission_id = admissions.admission_id
    inner join flags
        on flags.admission_id = admissions.admission_id

)

select * from final
