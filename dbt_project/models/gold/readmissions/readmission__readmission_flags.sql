-- Rule: an index admission is readmitted when the same beneficiary's next admission
-- (after transfers are merged, any cause) starts within `readmission_window_days` of its
-- discharge. The next admission is then a readmission.
with {{ import_refs(
    admissions='readmission__transfers_merged',
    index_admissions='readmission__index_admission',
) }},

with_next as (

    select
        admission_id,
        desynpuf_id,
        discharge_date,
        lead(admission_id) over (
            partition by desynpuf_id order by admission_date, admission_id
        ) as next_admission_id,
        lead(admission_date) over (
            partition by desynpuf_id order by admission_date, admission_id
        ) as next_admission_date
    from admissions

),

flagged as (

    select
        with_next.admission_id,
        with_next.next_admission_id,
        with_next.next_admission_date,
        datediff(with_next.next_admission_date, with_next.discharge_date) as days_to_next_admission,
        index_admissions.is_index_admission,
        index_admissions.is_index_admission
            and datediff(with_next.next_admission_date, with_next.discharge_date)
                <= {{ var('readmission_window_days') }}
            as is_readmitted_30d
    from with_next
    inner join index_admissions
        on index_admissions.admission_id = with_next.admission_id

),

final as (

    select
        flagged.*,
        coalesce(previous.is_readmitted_30d, false) as is_readmission
    from flagged
    left join flagged as previous
        on previous.next_admission_id = flagged.admission_id

)

select * from final
