{{ config(materialized="table") }}

-- A table: every rule below reads it.
-- Rule: stays of one beneficiary that overlap, or start within `transfer_gap_days` of
-- the previous discharge, are one hospitalization (a transfer, not a readmission). The
-- merged admission is named after its first claim, spans first admission to last
-- discharge, takes the DRG of its last claim and sums the payments.
with stays as (

    select * from {{ ref('readmission__claim_stays') }}

),

ordered as (

    select
        *,
        max(discharge_date) over (
            partition by desynpuf_id
            order by admission_date, discharge_date, claim_id
            rows between unbounded preceding and 1 preceding
        ) as previous_max_discharge_date
    from stays

),

flagged as (

    select
        *,
        case
            when previous_max_discharge_date is null then 1
            when admission_date > date_add(previous_max_discharge_date, {{ var('transfer_gap_days') }}) then 1
            else 0
        end as starts_new_admission
    from ordered

),

numbered as (

    select
        *,
        sum(starts_new_admission) over (
            partition by desynpuf_id
            order by admission_date, discharge_date, claim_id
            rows between unbounded preceding and current row
        ) as admission_number
    from flagged

),

final as (

    select
        min_by(claim_id, struct(admission_date, discharge_date, claim_id)) as admission_id,
        desynpuf_id,
        admission_number,
        min(admission_date) as admission_date,
        max(discharge_date) as discharge_date,
        max_by(drg_code, struct(discharge_date, claim_id)) as drg_code,
        min_by(provider_id, struct(admission_date, claim_id)) as provider_id,
        count(*) as claim_count,
        collect_list(claim_id) as claim_ids,
        sum(payment_amount) as payment_amount
    from numbered
    group by desynpuf_id, admission_number

)

select * from final
