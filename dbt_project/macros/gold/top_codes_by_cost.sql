{#
  The top `top_n_codes` principal codes per claim type by total claim payment, for
  top_diagnoses_by_cost and top_procedures_by_cost. A claim's payment is counted once,
  under its principal code (fct_claims: position 1 of its first segment that has one), so
  totals never double count.
    principal_column: the fct_claims column that holds the code
    code_column: the name of the code column in the result
    descriptions: the vocabulary seed (code, description) whose description each code
      carries (left join: a code missing from the CMS list keeps a null description)
    description_key: that seed's code column
#}
{% macro top_codes_by_cost(principal_column, code_column, descriptions, description_key) %}
{#- the payments under a code: its total, and the sum behind its mean #}
{%- set total_payment = sum_amount('payment_amount', "concat(claim_type, ' claim ', claim_id)", 'decimal(28, 2)') %}
with {{ import_refs(claims='fct_claims', descriptions=descriptions) }},

coded as (

    select claim_type, claim_id, desynpuf_id, payment_amount, {{ principal_column }} as {{ code_column }}
    from claims
    where {{ principal_column }} is not null

),

totals as (

    select
        claim_type,
        {{ code_column }},
        count(*) as claim_count,
        count(distinct desynpuf_id) as beneficiary_count,
        {{ total_payment }} as total_payment_amount,
        -- avg() as Spark computes it for decimals, from the faster sum
        cast(cast(
            {{ total_payment }} / cast(count(payment_amount) as decimal(20, 0))
        as decimal(22, 6)) as decimal(18, 2)) as mean_payment_amount
    from coded
    group by claim_type, {{ code_column }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by claim_type order by total_payment_amount desc, {{ code_column }}
        ) as cost_rank
    from totals

)

select
    ranked.claim_type,
    ranked.{{ code_column }},
    descriptions.description,
    ranked.claim_count,
    ranked.beneficiary_count,
    ranked.total_payment_amount,
    ranked.mean_payment_amount,
    ranked.cost_rank
from ranked
left join descriptions on descriptions.{{ description_key }} = ranked.{{ code_column }}
where ranked.cost_rank <= {{ var('top_n_codes') }}
{% endmacro %}
