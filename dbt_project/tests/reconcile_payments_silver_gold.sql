-- Reconciliation, both ways, per claim type and amount (payment, beneficiary responsibility,
-- primary payer): gold.fct_claims holds silver's first segment of each institutional claim
-- (the lowest SEGMENT, ranked here, not with the model's SQL) and every carrier claim and
-- drug event. Later segments stay in silver and out of gold (fct_claims header: the summary
-- file pays segment 1 only); their amounts are reported apart (silver_later_*), so
-- silver's total = first + later segments. Failing rows: the claim types where gold differs.
{%- set amounts = ['payment_amount', 'beneficiary_responsibility_amount', 'primary_payer_paid_amount'] %}
with institutional_segments as (
    {%- for setting in ['inpatient', 'outpatient'] %}

    select
        '{{ setting }}' as claim_type,
        row_number() over (partition by claim_id order by segment) as segment_rank,
        coalesce(payment_amount, 0) as payment_amount,
        coalesce(deductible_amount, 0) + coalesce(coinsurance_amount, 0)
            + coalesce(blood_deductible_amount, 0) as beneficiary_responsibility_amount,
        coalesce(primary_payer_paid_amount, 0) as primary_payer_paid_amount
    from {{ ref(setting ~ '_claims') }}
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

silver_rows as (

    select * from institutional_segments
    union all
    select
        'carrier',
        1,
        payment_amount,
        deductible_amount + coinsurance_amount,
        primary_payer_paid_amount
    from {{ ref('carrier_claims') }}
    union all
    select
        'pde',
        1,
        coalesce(total_rx_cost_amount, 0),
        coalesce(patient_pay_amount, 0),
        0
    from {{ ref('prescription_drug_events') }}

),

silver_totals as (

    select
        claim_type,
        count_if(segment_rank = 1) as silver_claim_count,
        {%- for amount in amounts %}
        sum(case when segment_rank = 1 then {{ amount }} else 0 end) as silver_{{ amount }},
        sum(case when segment_rank > 1 then {{ amount }} else 0 end) as silver_later_{{ amount }},
        {%- endfor %}
        count_if(segment_rank > 1) as silver_later_segment_count
    from silver_rows
    group by claim_type

),

gold_totals as (

    select
        claim_type,
        count(*) as gold_claim_count,
        {%- for amount in amounts %}
        sum({{ amount }}) as gold_{{ amount }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ ref('fct_claims') }}
    group by claim_type

),

compared as (

    select
        coalesce(silver_totals.claim_type, gold_totals.claim_type) as claim_type,
        coalesce(silver_totals.silver_claim_count, 0) as silver_claim_count,
        coalesce(gold_totals.gold_claim_count, 0) as gold_claim_count,
        {%- for amount in amounts %}
        coalesce(silver_totals.silver_{{ amount }}, 0) as silver_{{ amount }},
        coalesce(gold_totals.gold_{{ amount }}, 0) as gold_{{ amount }},
        coalesce(silver_totals.silver_later_{{ amount }}, 0) as silver_later_{{ amount }},
        {%- endfor %}
        coalesce(silver_totals.silver_later_segment_count, 0) as silver_later_segment_count
    from silver_totals
    full outer join gold_totals
        on gold_totals.claim_type = silver_totals.claim_type

)

select * from compared
where silver_claim_count <> gold_claim_count
{%- for amount in amounts %}
    or abs(silver_{{ amount }} - gold_{{ amount }}) > 0.005
{%- endfor %}
