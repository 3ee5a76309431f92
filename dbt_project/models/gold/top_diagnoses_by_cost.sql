-- The top {{ var('top_n_codes') }} principal diagnoses per claim type by total claim payment.
-- A claim's payment is counted once, under its principal code (position 1 of its
-- first segment), so totals never double count.
with codes as (

    select * from {{ ref('claim_diagnoses') }}

),

claims as (

    select * from {{ ref('fct_claims') }}

),

principal_codes as (

    select
        claim_type,
        claim_id,
        min_by(icd9_dgns_cd, segment) as icd9_dgns_cd
    from codes
    where diagnosis_position = 1
    group by claim_type, claim_id

),

costed as (

    select
        principal_codes.claim_type,
        principal_codes.icd9_dgns_cd,
        claims.desynpuf_id,
        claims.payment_amount
    from principal_codes
    inner join claims
        on claims.claim_type = principal_codes.claim_type
        and claims.claim_id = principal_codes.claim_id

),

totals as (

    select
        claim_type,
        icd9_dgns_cd,
        count(*) as claim_count,
        count(distinct desynpuf_id) as beneficiary_count,
        sum(payment_amount) as total_payment_amount,
        cast(avg(payment_amount) as decimal(18, 2)) as mean_payment_amount
    from costed
    group by claim_type, icd9_dgns_cd

),

ranked as (

    select
        *,
        row_number() over (
            partition by claim_type order by total_payment_amount desc, icd9_dgns_cd
        ) as cost_rank
    from totals

)

select * from ranked
where cost_rank <= {{ var('top_n_codes') }}
