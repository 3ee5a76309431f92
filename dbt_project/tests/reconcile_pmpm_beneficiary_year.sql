-- Reconciliation inside gold: state-year totals add up to the beneficiary-year rows.
with by_state as (

    select sum(claims_payment_amount) as amount, sum(member_months) as member_months
    from {{ ref('pmpm_by_state_year') }}

),

by_beneficiary as (

    select sum(claims_payment_amount) as amount, sum(member_months) as member_months
    from {{ ref('beneficiary_year') }}

)

select by_state.*, by_beneficiary.amount as beneficiary_amount, by_beneficiary.member_months as beneficiary_member_months
from by_state
cross join by_beneficiary
where abs(coalesce(by_state.amount, 0) - coalesce(by_beneficiary.amount, 0)) > 0.005
    or coalesce(by_state.member_months, 0) <> coalesce(by_beneficiary.member_months, 0)
