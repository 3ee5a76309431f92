-- Rule: an index admission must be discharged at least `readmission_window_days` before
-- the end of the data (`data_end_date`), so its whole readmission window is observed.
with {{ import_refs(admissions='readmission__transfers_merged') }},

final as (

    select
        admission_id,
        discharge_date <= date_sub(
            to_date('{{ var("data_end_date") }}'), {{ var('readmission_window_days') }}
        ) as is_window_observed
    from admissions

)

select * from final
