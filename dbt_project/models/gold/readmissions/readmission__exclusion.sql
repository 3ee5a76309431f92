-- Rule: admissions whose principal diagnosis (position 1 of the first claim) is
-- rehabilitation (ICD-9 V57.x) or a primary psychiatric condition (ICD-9 290-319) are not
-- index admissions, as in CMS's hospital-wide readmission measure. Planned readmissions
-- are NOT excluded: DE-SynPUF lacks what the CMS planned-readmission algorithm needs, so
-- the flags count all-cause readmissions.
with {{ import_refs(admissions='readmission__transfers_merged') }},

diagnoses as (

    select * from {{ ref('claim_diagnoses') }}
    where claim_type = 'inpatient' and diagnosis_position = 1

),

principal as (

    select
        claim_id,
        min_by(icd9_dgns_cd, segment) as principal_icd9_dgns_cd
    from diagnoses
    group by claim_id

),

final as (

    select
        admissions.admission_id,
        principal.principal_icd9_dgns_cd,
        case
            when principal.principal_icd9_dgns_cd like 'V57%' then 'rehabilitation'
            when principal.principal_icd9_dgns_cd rlike '^(29[0-9]|30[0-9]|31[0-9])'
                then 'psychiatric'
        end as exclusion_reason
    from admissions
    left join principal
        on principal.claim_id = admissions.admission_id

)

select * from final
