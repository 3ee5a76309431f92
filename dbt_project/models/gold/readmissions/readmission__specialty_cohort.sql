-- Rule (HWR specialty cohorts): a hospitalization with any procedure in a surgery/
-- gynecology procedure CCS category is in the surgery_gynecology cohort; any other is
-- assigned by the CCS category of its principal diagnosis to medicine,
-- cardiorespiratory, cardiovascular or neurology (seed readmission_specialty_cohort_ccs,
-- CMS HWR tables). A hospitalization that no rule assigns has no cohort and is not an
-- index admission (HWR cohort inclusion).
with {{ import_refs(
    admissions='readmission__transfers_merged',
    diagnosis='readmission__principal_diagnosis_ccs',
    procedures='readmission__procedure_ccs',
    cohorts='readmission_specialty_cohort_ccs',
) }},

surgical as (

    select distinct procedures.admission_id
    from procedures
    inner join cohorts
        on cast(cohorts.ccs_category as string) = procedures.ccs_category
            and cohorts.code_kind = 'procedure'

),

final as (

    select
        admissions.admission_id,
        case
            when surgical.admission_id is not null then 'surgery_gynecology'
            else cohorts.specialty_cohort
        end as specialty_cohort
    from admissions
    left join surgical
        on surgical.admission_id = admissions.admission_id
    left join diagnosis
        on diagnosis.admission_id = admissions.admission_id
    left join cohorts
        on cast(cohorts.ccs_category as string) = diagnosis.principal_ccs_category
            and cohorts.code_kind = 'diagnosis'

)

select * from final
