{#
  The top `top_n_codes` principal codes per claim type by total claim payment, for
  top_diagnoses_by_cost and top_procedures_by_cost. A claim's payment is counted once,
  under its principal code (position 1 of its first segment), so totals never double count.
    codes_model: claim_diagnoses | claim_procedures
    code_column: its code column; position_column: its position column
#}
{% macro top_codes_by_cost(codes_model, code_column, position_column) %}
{#- only claim types that have such codes: fct_claims holds every claim type (drug events
    have no diagnosis, and only hospital claims have procedures), and the join shuffles
    what it reads -#}
{%- set claim_types = [] %}
{%- set split_types = [] %}{# claim types whose claims come in segments #}
{%- for m in cms_mappings_with_unpivot(codes_model) %}
    {%- do claim_types.append(m.claim_type) %}
    {%- if 'segment' in m.columns | map(attribute='name') | list %}{% do split_types.append(m.claim_type) %}{% endif %}
{%- endfor %}
{%- set whole_types = claim_types | reject('in', split_types) | list %}
{#- the payments under a code: its total, and the sum behind its mean #}
{%- set total_payment = sum_amount('payment_amount', "concat(claim_type, ' claim ', claim_id)", 'decimal(28, 2)') %}
with {{ import_refs(codes=codes_model) }},

claims as (

    select claim_type, claim_id, desynpuf_id, payment_amount
    from {{ ref('fct_claims') }}
    where claim_type in ('{{ claim_types | join("', '") }}')

),

principal_codes as (

    {#- a claim in one segment has one code at position 1 (the silver gate fails a position
        twice): no grouping, which for a text code is a sort of every claim (carrier: most) -#}
    {%- if whole_types %}
    select claim_type, claim_id, {{ code_column }}
    from codes
    where {{ position_column }} = 1 and claim_type in ('{{ whole_types | join("', '") }}')
    {%- endif %}
    {%- if whole_types and split_types %}
    union all
    {%- endif %}
    {%- if split_types %}
    select
        claim_type,
        claim_id,
        min_by({{ code_column }}, segment) as {{ code_column }}
    from codes
    where {{ position_column }} = 1 and claim_type in ('{{ split_types | join("', '") }}')
    group by claim_type, claim_id
    {%- endif %}

),

costed as (

    select
        principal_codes.claim_type,
        principal_codes.claim_id,
        principal_codes.{{ code_column }},
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
        {{ code_column }},
        count(*) as claim_count,
        count(distinct desynpuf_id) as beneficiary_count,
        {{ total_payment }} as total_payment_amount,
        -- avg() as Spark computes it for decimals, from the faster sum
        cast(cast(
            {{ total_payment }} / cast(count(payment_amount) as decimal(20, 0))
        as decimal(22, 6)) as decimal(18, 2)) as mean_payment_amount
    from costed
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

select * from ranked
where cost_rank <= {{ var('top_n_codes') }}
{% endmacro %}
