-- Rule (HWR cohort exclusions): a hospitalization whose principal diagnosis falls in a
-- CCS category of the psychiatric, rehabilitation or medical-treatment-of-cancer
-- cohorts is not an index admission (seed readmission_cohort_exclusion_ccs, CMS HWR
-- tables: psychiatric = CCS 650-652, 654-659, 662, 670; rehabilitation = 254; cancer =
-- 11-45). Delirium/dementia (653), alcohol (660), substance (661) and mental-health
-- screening (663) stay in: CMS's psychiatric exclusion is narrower than ICD-9 290-319.
with {{ import_refs(
    diagnosis='readmission__principal_diagnosis_ccs',
    exclusions='readmission_cohort_exclusion_ccs',
) }},

final as (

    select
        diagnosis.admission_id,
        diagnosis.principal_icd9_dgns_cd,
        diagnosis.principal_ccs_category,
        exclusions.exclusion_reason
    from diagnosis
    left join exclusions
        on cast(exclusions.ccs_category as string) = diagnosis.principal_ccs_category

)

select * from final
