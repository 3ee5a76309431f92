{{ config(materialized="table") }}

-- A table: every rule below reads it.
-- Rule (transfers, as in CMS's hospital-wide readmission measure): a stay that starts on
-- the discharge day of the beneficiary's previous stay, or within `transfer_gap_days` (1)
-- after it, at a DIFFERENT provider is a transfer: both are one hospitalization. Stays
-- that overlap (start before the previous discharge) are one hospitalization whatever the
-- provider. A stay at the SAME provider that starts on or after the previous discharge day
-- is a new admission: next day = a readmission; same day = CMS's same-day rule
-- (readmission__same_day_readmission). DE-SynPUF has no discharge status or admission
-- source, so transfers are found by dates and providers alone.
-- The merged hospitalization is named after, and takes its principal diagnosis, DRG and
-- provider from, ONE claim: its first (admitting) claim, the stay whose principal
-- diagnosis CMS uses for cohort inclusion of a transfer chain. Dates span first admission
-- to last discharge; payments add up.
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
        ) as previous_max_discharge_date,
        lag(provider_id) over (
            partition by desynpuf_id order by admission_date, discharge_date, claim_id
        ) as previous_provider_id
    from stays

),

flagged as (

    select
        *,
        case
            when previous_max_discharge_date is null then 1
            when admission_date < previous_max_discharge_date then 0
            when admission_date <= date_add(previous_max_discharge_date, {{ var('transfer_gap_days') }})
                and not provider_id <=> previous_provider_id then 0
            else 1
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
        min_by(principal_icd9_dgns_cd, struct(admission_date, discharge_date, claim_id))
            as principal_icd9_dgns_cd,
        min_by(drg_code, struct(admission_date, discharge_date, claim_id)) as drg_code,
        min_by(provider_id, struct(admission_date, discharge_date, claim_id)) as provider_id,
        max_by(provider_id, struct(discharge_date, admission_date, claim_id))
            as discharge_provider_id,
        count(*) as claim_count,
        collect_list(claim_id) as claim_ids,
        sum(payment_amount) as payment_amount
    from numbered
    group by desynpuf_id, admission_number

)

select * from final
