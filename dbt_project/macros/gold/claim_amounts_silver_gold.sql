{#
  Silver against gold to the cent, both ways, per claim type, year and amount: silver's
  first segment of each institutional claim (the lowest SEGMENT, ranked here, not with
  fct_claims' SQL) and every carrier claim and drug event, against gold.fct_claims. Year:
  the year of the first segment's through date (service date for drug events), as
  fct_claims' rule says. Amounts: payment (drug events: gross drug cost), beneficiary
  responsibility (deductibles + coinsurance + blood deductible; drug events: patient pay),
  primary payer paid. Later segments stay in silver and out of gold (fct_claims header):
  their amounts are reported apart (silver_later_segment_amount). Used by the mart
  gold.reconcile_claim_amounts and by the test reconcile_payments_silver_gold (which does
  not depend on the mart being selected); `where`: a condition on the result's columns.
#}
{% macro claim_amounts_silver_gold(silver_inpatient, silver_outpatient, silver_carrier, silver_drug_events, gold_claims, where=none) %}
{%- set amounts = ['payment_amount', 'beneficiary_responsibility_amount', 'primary_payer_paid_amount'] %}
with institutional_segments as (
    {%- for setting, relation in [('inpatient', silver_inpatient), ('outpatient', silver_outpatient)] %}

    select
        '{{ setting }}' as claim_type,
        row_number() over (partition by claim_id order by segment) as segment_rank,
        first_value(year(claim_end_date)) over (partition by claim_id order by segment) as claim_year,
        coalesce(payment_amount, 0) as payment_amount,
        coalesce(deductible_amount, 0) + coalesce(coinsurance_amount, 0)
            + coalesce(blood_deductible_amount, 0) as beneficiary_responsibility_amount,
        coalesce(primary_payer_paid_amount, 0) as primary_payer_paid_amount
    from {{ relation }}
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

silver_rows as (

    select * from institutional_segments
    union all
    select
        'carrier',
        1,
        year(claim_end_date),
        coalesce(payment_amount, 0),
        coalesce(deductible_amount, 0) + coalesce(coinsurance_amount, 0),
        coalesce(primary_payer_paid_amount, 0)
    from {{ silver_carrier }}
    union all
    select
        'pde',
        1,
        year(service_date),
        coalesce(total_rx_cost_amount, 0),
        coalesce(patient_pay_amount, 0),
        0
    from {{ silver_drug_events }}

),

silver_amounts as (

    select
        claim_type,
        claim_year,
        segment_rank,
        stack(3,
            {%- for amount in amounts %}
            '{{ amount }}', cast({{ amount }} as decimal(18, 2)){{ "," if not loop.last }}
            {%- endfor %}
        ) as (amount_name, amount)
    from silver_rows

),

silver_totals as (

    select
        claim_type,
        claim_year,
        amount_name,
        count_if(segment_rank = 1) as claim_count,
        sum(case when segment_rank = 1 then amount else 0 end) as amount,
        sum(case when segment_rank > 1 then amount else 0 end) as later_segment_amount
    from silver_amounts
    group by claim_type, claim_year, amount_name

),

gold_amounts as (

    select
        claim_type,
        claim_year,
        stack(3,
            {%- for amount in amounts %}
            '{{ amount }}', cast({{ amount }} as decimal(18, 2)){{ "," if not loop.last }}
            {%- endfor %}
        ) as (amount_name, amount)
    from {{ gold_claims }}

),

gold_totals as (

    select claim_type, claim_year, amount_name, count(*) as claim_count, sum(amount) as amount
    from gold_amounts
    group by claim_type, claim_year, amount_name

),

compared as (

    select
        coalesce(silver_totals.claim_type, gold_totals.claim_type) as claim_type,
        coalesce(silver_totals.claim_year, gold_totals.claim_year) as claim_year,
        coalesce(silver_totals.amount_name, gold_totals.amount_name) as amount_name,
        coalesce(silver_totals.claim_count, 0) as silver_claim_count,
        coalesce(gold_totals.claim_count, 0) as gold_claim_count,
        cast(coalesce(silver_totals.amount, 0) as decimal(28, 2)) as silver_amount,
        cast(coalesce(gold_totals.amount, 0) as decimal(28, 2)) as gold_amount,
        cast(coalesce(silver_totals.later_segment_amount, 0) as decimal(28, 2)) as silver_later_segment_amount
    from silver_totals
    full outer join gold_totals
        on gold_totals.claim_type = silver_totals.claim_type
        and gold_totals.claim_year <=> silver_totals.claim_year
        and gold_totals.amount_name = silver_totals.amount_name

),

reconciled as (

    select
        *,
        gold_amount - silver_amount as difference_amount,
        gold_amount = silver_amount and gold_claim_count = silver_claim_count as is_reconciled
    from compared

)

select * from reconciled{{ ' where ' ~ where if where }}
{% endmacro %}
