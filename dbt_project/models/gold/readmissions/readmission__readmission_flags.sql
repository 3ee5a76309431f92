-- Rule: an index admission is readmitted when the beneficiary's next hospitalization
-- (transfers merged, any cause) starts within `readmission_window_days` (30) of its
-- discharge and is not planned (readmission__planned). Only the first hospitalization
-- after the index one counts: when it is planned, a later unplanned one in the window is
-- not counted (CMS: a readmission that follows a planned readmission is not counted).
-- That next hospitalization is then a readmission.
with {{ import_refs(
    admissions='readmission__transfers_merged',
    index_admissions='readmission__index_admission',
    planned='readmission__planned',
) }},

with_next as (

    select
        admission_id,
        desynpuf_id,
        discharge_date,
        lead(admission_id) over w as next_admission_id,
        lead(admission_date) over w as next_admission_date
    from admissions
    window w as (partition by desynpuf_id order by admission_date, admission_id)

),

flagged as (

    select
        with_next.admission_id,
        with_next.next_admission_id,
        with_next.next_admission_date,
        datediff(with_next.next_admission_date, with_next.discharge_date) as days_to_next_admission,
        next_planned.is_planned as is_next_admission_planned,
        index_admissions.is_index_admission,
        index_admissions.is_index_admission
        and datediff(with_next.next_admission_date, with_next.discharge_date)
        <= {{ var('readmission_window_days') }}
        and not next_planned.is_planned
            as is_readmitted_30d
    from with_next
    inner join index_admissions
        on index_admissions.admission_id = with_next.admission_id
    left join planned as next_planned
        on next_planned.admission_id = with_next.next_admission_id

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
