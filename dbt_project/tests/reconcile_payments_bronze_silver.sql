-- Reconciliation: total payments per claim type agree between bronze (latest delivery of
-- each key, amounts read from the raw text) and silver (claims, and for carrier claims
-- both the claim totals and the unpivoted lines). Failing rows: the claim types that differ.
-- Carrier claims and drug events, read from the per-batch store, leave out the deliveries
-- that stg_*_superseded lists (the set the store's views leave out) instead of ranking
-- every delivery again: at scale 1.0 that sort over 10 million rows cost more than the
-- sums. Which delivery wins is the unit tests' and the gate's distinct-key checks' concern.
{%- set line_amounts = [] %}
{%- for n in range(1, 14) %}{% do line_amounts.append("coalesce(" ~ bronze_amount("LINE_NCH_PMT_AMT_" ~ n) ~ ", 0)") %}{% endfor %}
with bronze_inpatient as (

    select
        CLM_PMT_AMT as amount,
        row_number() over (partition by CLM_ID, SEGMENT order by _ingested_at desc, _batch_id desc, _source_line desc) as delivery_rank
    from {{ source('bronze', 'inpatient_claims') }}

),

bronze_outpatient as (

    select
        CLM_PMT_AMT as amount,
        row_number() over (partition by CLM_ID, SEGMENT order by _ingested_at desc, _batch_id desc, _source_line desc) as delivery_rank
    from {{ source('bronze', 'outpatient_claims') }}

),

bronze_carrier as (

    select {{ line_amounts | join(' + ') }} as amount
    from {{ source('bronze', 'carrier_claims') }} as bronze
    left anti join {{ ref('stg_carrier_claims_superseded') }} as superseded
        on {{ same_delivery('bronze', 'superseded') }}

),

bronze_drug_events as (

    select TOT_RX_CST_AMT as amount
    from {{ source('bronze', 'prescription_drug_events') }} as bronze
    left anti join {{ ref('stg_prescription_drug_events_superseded') }} as superseded
        on {{ same_delivery('bronze', 'superseded') }}

),

bronze_totals as (

    select 'inpatient' as claim_type, sum({{ bronze_amount('amount') }}) as bronze_amount from bronze_inpatient where delivery_rank = 1
    union all
    select 'outpatient', sum({{ bronze_amount('amount') }}) from bronze_outpatient where delivery_rank = 1
    union all
    select 'carrier', sum(amount) from bronze_carrier
    union all
    select 'pde', sum({{ bronze_amount('amount') }}) from bronze_drug_events

),

silver_totals as (

    select 'inpatient' as claim_type, sum(payment_amount) as silver_amount, sum(payment_amount) as silver_detail_amount from {{ ref('inpatient_claims') }}
    union all
    select 'outpatient', sum(payment_amount), sum(payment_amount) from {{ ref('outpatient_claims') }}
    union all
    select 'carrier', (select sum(payment_amount) from {{ ref('carrier_claims') }}), sum(line_payment_amount) from {{ ref('carrier_lines') }}
    union all
    select 'pde', sum(total_rx_cost_amount), sum(total_rx_cost_amount) from {{ ref('prescription_drug_events') }}

),

compared as (

    select
        bronze_totals.claim_type,
        coalesce(bronze_totals.bronze_amount, 0) as bronze_amount,
        coalesce(silver_totals.silver_amount, 0) as silver_amount,
        coalesce(silver_totals.silver_detail_amount, 0) as silver_detail_amount
    from bronze_totals
    inner join silver_totals
        on silver_totals.claim_type = bronze_totals.claim_type

)

select * from compared
where abs(bronze_amount - silver_amount) > 0.005
    or abs(bronze_amount - silver_detail_amount) > 0.005
