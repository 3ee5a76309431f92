-- Reconciliation: total payments per claim type agree between silver and gold.fct_claims.
-- Failing rows: the claim types that differ. (beneficiary_year, which holds the claims whose
-- year has a summary row, against fct_claims: the gold gate's payment_beyond_claims.)
with silver_totals as (

    select 'inpatient' as claim_type, sum(payment_amount) as silver_amount from {{ ref('inpatient_claims') }}
    union all
    select 'outpatient', sum(payment_amount) from {{ ref('outpatient_claims') }}
    union all
    select 'carrier', sum(payment_amount) from {{ ref('carrier_claims') }}
    union all
    select 'pde', sum(total_rx_cost_amount) from {{ ref('prescription_drug_events') }}

),

gold_claims as (

    select claim_type, sum(payment_amount) as gold_amount
    from {{ ref('fct_claims') }}
    group by claim_type

),

compared as (

    select
        silver_totals.claim_type,
        coalesce(silver_totals.silver_amount, 0) as silver_amount,
        coalesce(gold_claims.gold_amount, 0) as gold_amount
    from silver_totals
    left join gold_claims
        on gold_claims.claim_type = silver_totals.claim_type

)

select * from compared
where abs(silver_amount - gold_amount) > 0.005
