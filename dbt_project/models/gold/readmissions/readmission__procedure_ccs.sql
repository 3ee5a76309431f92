-- Rule: a hospitalization's procedures are every ICD-9-CM procedure code on any claim it
-- merges (all positions, all segments), each with its HCUP single-level CCS category
-- (seed readmission_icd9_procedure_ccs, HCUP CCS 2015 $prref). The planned-readmission
-- algorithm (v4) and the surgery/gynecology cohort look at all procedures, not only the
-- first. One row per hospitalization and distinct code.
with {{ import_refs(
    admissions='readmission__transfers_merged',
    pr_ccs='readmission_icd9_procedure_ccs',
) }},

procedures as (

    select * from {{ ref('claim_procedures') }}
    where claim_type = 'inpatient' and icd9_prcdr_cd is not null

),

stay_claims as (

    select
        admission_id,
        claim_id
    from admissions
        lateral view explode(claim_ids) claims as claim_id

),

final as (

    select distinct
        stay_claims.admission_id,
        procedures.icd9_prcdr_cd,
        cast(pr_ccs.ccs_category as string) as ccs_category
    from stay_claims
    inner join procedures
        on procedures.claim_id = stay_claims.claim_id
    left join pr_ccs
        on pr_ccs.icd9_prcdr_code = procedures.icd9_prcdr_cd

)

select * from final
