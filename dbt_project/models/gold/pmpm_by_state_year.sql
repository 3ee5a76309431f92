-- Per member per month payments by state and year: payments over member months of the
-- beneficiaries living in the state that year.
with {{ import_refs(beneficiary_years='beneficiary_year') }},

totals as (

    select
        state_code,
        max(state) as state,
        beneficiary_year,
        count(*) as beneficiary_count,
        sum(member_months) as member_months,
        sum(claims_payment_amount) as claims_payment_amount,
        {%- for t in ['inpatient', 'outpatient', 'carrier', 'pde'] %}
        sum({{ t }}_payment_amount) as {{ t }}_payment_amount,
        {%- endfor %}
        sum(summary_medicare_total_amount) as summary_medicare_total_amount
    from beneficiary_years
    group by state_code, beneficiary_year

),

final as (

    select
        *,
        cast(claims_payment_amount / nullif(member_months, 0) as decimal(18, 2)) as claims_pmpm,
        {%- for t in ['inpatient', 'outpatient', 'carrier', 'pde'] %}
        cast({{ t }}_payment_amount / nullif(member_months, 0) as decimal(18, 2)) as {{ t }}_pmpm,
        {%- endfor %}
        cast(summary_medicare_total_amount / nullif(member_months, 0) as decimal(18, 2)) as summary_medicare_pmpm
    from totals

)

select * from final
