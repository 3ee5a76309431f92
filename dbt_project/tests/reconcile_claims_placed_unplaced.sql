-- Reconciliation, both ways, per claim type: every claim of gold.fct_claims is either placed
-- in a beneficiary-year (beneficiary_year's claim counts and payments) or listed in
-- reconcile_unplaced_claims, never both, never neither. Failing rows: the claim types
-- whose counts or payments differ.
with claim_totals as (

    select
        claim_type,
        count(*) as claim_count,
        sum(payment_amount) as payment_amount
    from {{ ref('fct_claims') }}
    group by claim_type

),

placed_totals as (
    {%- for t in ['inpatient', 'outpatient', 'carrier', 'pde'] %}

    select
        '{{ t }}' as claim_type,
        sum({{ t }}_claim_count) as claim_count,
        sum({{ t }}_payment_amount) as payment_amount
    from {{ ref('beneficiary_year') }}
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

unplaced_totals as (

    select
        claim_type,
        sum(claim_count) as claim_count,
        sum(payment_amount) as payment_amount
    from {{ ref('reconcile_unplaced_claims') }}
    group by claim_type

),

compared as (

    select
        coalesce(claim_totals.claim_type, placed_totals.claim_type, unplaced_totals.claim_type) as claim_type,
        coalesce(claim_totals.claim_count, 0) as claim_count,
        coalesce(placed_totals.claim_count, 0) as placed_claim_count,
        coalesce(unplaced_totals.claim_count, 0) as unplaced_claim_count,
        coalesce(claim_totals.payment_amount, 0) as payment_amount,
        coalesce(placed_totals.payment_amount, 0) as placed_payment_amount,
        coalesce(unplaced_totals.payment_amount, 0) as unplaced_payment_amount
    from claim_totals
    full outer join placed_totals
        on placed_totals.claim_type = claim_totals.claim_type
    full outer join unplaced_totals
        on unplaced_totals.claim_type = coalesce(claim_totals.claim_type, placed_totals.claim_type)

)

select * from compared
where claim_count <> placed_claim_count + unplaced_claim_count
    or abs(payment_amount - placed_payment_amount - unplaced_payment_amount) > 0.005
