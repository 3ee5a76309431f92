-- Rule: a hospitalization's condition is the HCUP single-level CCS category of its
-- principal diagnosis (ICD-9-CM, position 1 of the claim that names the hospitalization),
-- mapped with seed vocab_icd9_dx_ccs (HCUP CCS 2015 for ICD-9-CM, see its seed docs).
-- A code the map does not know has no category (and so no specialty cohort).
with {{ import_refs(
    admissions='readmission__transfers_merged',
    dx_ccs='vocab_icd9_dx_ccs',
) }},

final as (

    select
        admissions.admission_id,
        admissions.principal_icd9_dgns_cd,
        cast(dx_ccs.ccs_category as string) as principal_ccs_category
    from admissions
    left join dx_ccs
        on dx_ccs.icd9_dx_code = admissions.principal_icd9_dgns_cd

)

select * from final
