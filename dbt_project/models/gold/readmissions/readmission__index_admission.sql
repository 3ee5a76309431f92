-- An index admission meets every requirement and no exclusion: alive at discharge with
-- valid dates, a fully observed 30-day window, and no excluded principal diagnosis.
with {{ import_refs(
    admissions='readmission__transfers_merged',
    discharge_requirement='readmission__index_discharge_requirement',
    time_requirement='readmission__index_time_requirement',
    exclusion='readmission__exclusion',
) }},

final as (

    select
        admissions.admission_id,
        discharge_requirement.is_alive_at_discharge,
        discharge_requirement.has_valid_dates,
        time_requirement.is_window_observed,
        exclusion.principal_icd9_dgns_cd,
        exclusion.exclusion_reason,
        discharge_requirement.is_alive_at_discharge
            and discharge_requirement.has_valid_dates
            and time_requirement.is_window_observed
            and exclusion.exclusion_reason is null as is_index_admission
    from admissions
    inner join discharge_requirement
        on discharge_requirement.admission_id = admissions.admission_id
    inner join time_requirement
        on time_requirement.admission_id = admissions.admission_id
    inner join exclusion
        on exclusion.admission_id = admissions.admission_id

)

select * from final
