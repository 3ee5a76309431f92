-- Rule (CMS Planned Readmission Algorithm v4, as in the HWR measure): a hospitalization
-- is planned when
--   PR1: any procedure is in an always-planned procedure CCS (transplants), or
--   PR2: its principal diagnosis is in an always-planned diagnosis CCS (maintenance
--        chemotherapy, rehabilitation), or
--   PR3/PR4: any procedure is in a potentially-planned procedure CCS and its principal
--        diagnosis is not in an acute diagnosis CCS.
-- Seeds readmission_pr1..pr4_* (CMS/YNHHSC-CORE tables, CCS categories). A planned
-- hospitalization that follows an index admission is not a readmission.
with {{ import_refs(
    admissions='readmission__transfers_merged',
    diagnosis='readmission__principal_diagnosis_ccs',
    procedures='readmission__procedure_ccs',
    pr1='readmission_pr1_always_planned_procedure_ccs',
    pr2='readmission_pr2_always_planned_diagnosis_ccs',
    pr3='readmission_pr3_potentially_planned_procedure_ccs',
    pr4='readmission_pr4_acute_diagnosis_ccs',
) }},

procedure_flags as (

    select
        procedures.admission_id,
        max(pr1.ccs_category is not null) as has_always_planned_procedure,
        max(pr3.ccs_category is not null) as has_potentially_planned_procedure
    from procedures
    left join pr1
        on cast(pr1.ccs_category as string) = procedures.ccs_category
    left join pr3
        on cast(pr3.ccs_category as string) = procedures.ccs_category
    group by procedures.admission_id

),

final as (

    select
        admissions.admission_id,
        case
            when coalesce(procedure_flags.has_always_planned_procedure, false) then 'PR1'
            when pr2.ccs_category is not null then 'PR2'
            when coalesce(procedure_flags.has_potentially_planned_procedure, false)
                and pr4.ccs_category is null then 'PR3'
        end as planned_rule
    from admissions
    left join procedure_flags
        on procedure_flags.admission_id = admissions.admission_id
    left join diagnosis
        on diagnosis.admission_id = admissions.admission_id
    left join pr2
        on cast(pr2.ccs_category as string) = diagnosis.principal_ccs_category
    left join pr4
        on cast(pr4.ccs_category as string) = diagnosis.principal_ccs_category

)

select
    admission_id,
    planned_rule,
    planned_rule is not null as is_planned
from final
