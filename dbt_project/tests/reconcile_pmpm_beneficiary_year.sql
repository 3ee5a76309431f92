-- Reconciliation inside gold: state-year totals add up to the beneficiary-year rows
-- (payments, every member-month count and every utilisation count).
{%- set counts = ['member_months', 'part_a_member_months', 'part_b_member_months',
    'part_d_member_months', 'inpatient_admission_count', 'inpatient_claim_count',
    'inpatient_days', 'outpatient_claim_count', 'carrier_claim_count', 'pde_claim_count'] %}
with by_state as (

    select
        {%- for c in counts %}
        sum({{ c }}) as {{ c }},
        {%- endfor %}
        sum(claims_payment_amount) as amount
    from {{ ref('pmpm_by_state_year') }}

),

by_beneficiary as (

    select
        {%- for c in counts %}
        sum({{ c }}) as beneficiary_{{ c }},
        {%- endfor %}
        sum(claims_payment_amount) as beneficiary_amount
    from {{ ref('beneficiary_year') }}

)

select
    by_state.*,
    by_beneficiary.*
from by_state
cross join by_beneficiary
where abs(coalesce(by_state.amount, 0) - coalesce(by_beneficiary.beneficiary_amount, 0)) > 0.005
    {%- for c in counts %}
    or coalesce(by_state.{{ c }}, 0) <> coalesce(by_beneficiary.beneficiary_{{ c }}, 0)
    {%- endfor %}
