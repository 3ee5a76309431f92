-- Rule: an index admission must end with the beneficiary alive and not transferred out:
--   * alive: no death date on or before the discharge date (DE-SynPUF has no discharge
--     status; the death date stands in for "discharged expired");
--   * not transferred out: the beneficiary's next hospitalization does not start at a
--     different provider on the discharge day or within `transfer_gap_days` after it
--     (readmission__transfers_merged merges such pairs, so a merged hospitalization is
--     judged by its last discharge; this rule keeps the requirement explicit);
--   * dates that make sense (discharge not before admission).
with {{ import_refs(
    admissions='readmission__transfers_merged',
    beneficiaries='dim_beneficiary',
) }},

with_next as (

    select
        *,
        lead(admission_date) over (
            partition by desynpuf_id order by admission_date, admission_id
        ) as next_admission_date,
        lead(provider_id) over (
            partition by desynpuf_id order by admission_date, admission_id
        ) as next_provider_id
    from admissions

),

final as (

    select
        with_next.admission_id,
        coalesce(beneficiaries.death_date > with_next.discharge_date, true)
            as is_alive_at_discharge,
        coalesce(
            with_next.next_admission_date
            <= date_add(with_next.discharge_date, {{ var('transfer_gap_days') }})
            and not with_next.next_provider_id <=> with_next.discharge_provider_id,
            false
        ) as is_transferred_out,
        with_next.discharge_date >= with_next.admission_date as has_valid_dates
    from with_next
    left join beneficiaries
        on beneficiaries.desynpuf_id = with_next.desynpuf_id

)

select * from final
