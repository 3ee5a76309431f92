-- One row per beneficiary and year: enrollment, payments by setting from the claims and
-- from the summary file, utilization and chronic conditions.
-- Rule: a claim counts in the year of its through date (fct_claims.claim_year: CLM_THRU_DT,
-- the discharge date of a stay; SRVC_DT for Part D), the rule that matches the summary
-- file's MEDREIMB_IP best on the real samples (fct_claims header,
-- analyses/claim_year_rule.sql). Claims with no summary row for their beneficiary and year
-- are not lost: gold.reconcile_unplaced_claims counts them.
with {{ import_refs(
    beneficiaries='beneficiary',
    claims='fct_claims',
) }},

claim_amounts as (

    select
        desynpuf_id,
        claim_year,
        claim_key,
        claim_type,
        claim_start_date,
        claim_end_date,
        {%- for t in ['inpatient', 'outpatient', 'carrier', 'pde'] %}
        case when claim_type = '{{ t }}' then payment_amount else 0 end as {{ t }}_payment_amount,
        {%- endfor %}
        payment_amount
    from claims

),

claims_by_year as (

    select
        desynpuf_id,
        claim_year,
        {%- for t in ['inpatient', 'outpatient', 'carrier', 'pde'] %}
        {{ sum_amount(t ~ '_payment_amount', 'claim_key', 'decimal(28, 2)') }} as {{ t }}_payment_amount,
        count_if(claim_type = '{{ t }}') as {{ t }}_claim_count,
        {%- endfor %}
        sum(case when claim_type = 'inpatient'
            then datediff(claim_end_date, claim_start_date) else 0 end) as inpatient_days,
        {{ sum_amount('payment_amount', 'claim_key', 'decimal(28, 2)') }} as claims_payment_amount
    from claim_amounts
    group by desynpuf_id, claim_year

),

final as (

    select
        beneficiaries.desynpuf_id,
        beneficiaries.beneficiary_year,
        beneficiaries.age,
        beneficiaries.sex_code,
        beneficiaries.race_code,
        beneficiaries.state_code,
        beneficiaries.state,
        beneficiaries.has_esrd,
        beneficiaries.is_died_in_year,
        beneficiaries.is_alive_at_year_end,
        beneficiaries.part_a_coverage_months,
        beneficiaries.part_b_coverage_months,
        beneficiaries.hmo_coverage_months,
        beneficiaries.part_d_coverage_months,
        -- a member month: a month with Part A or Part B coverage
        greatest(coalesce(beneficiaries.part_a_coverage_months, 0),
                 coalesce(beneficiaries.part_b_coverage_months, 0)) as member_months,
        {%- for column, code in chronic_condition_columns() %}
        coalesce(beneficiaries.{{ column }}, false) as {{ column }},
        {%- endfor %}
        beneficiaries.chronic_condition_count,
        {%- for t in ['inpatient', 'outpatient', 'carrier', 'pde'] %}
        coalesce(claims_by_year.{{ t }}_payment_amount, 0) as {{ t }}_payment_amount,
        coalesce(claims_by_year.{{ t }}_claim_count, 0) as {{ t }}_claim_count,
        {%- endfor %}
        coalesce(claims_by_year.inpatient_days, 0) as inpatient_days,
        coalesce(claims_by_year.claims_payment_amount, 0) as claims_payment_amount,
        beneficiaries.medicare_ip_amount as summary_medicare_ip_amount,
        beneficiaries.medicare_op_amount as summary_medicare_op_amount,
        beneficiaries.medicare_carrier_amount as summary_medicare_carrier_amount,
        coalesce(beneficiaries.medicare_ip_amount, 0) + coalesce(beneficiaries.medicare_op_amount, 0)
            + coalesce(beneficiaries.medicare_carrier_amount, 0) as summary_medicare_total_amount,
        coalesce(beneficiaries.beneficiary_ip_amount, 0) + coalesce(beneficiaries.beneficiary_op_amount, 0)
            + coalesce(beneficiaries.beneficiary_carrier_amount, 0) as summary_beneficiary_total_amount
    from beneficiaries
    left join claims_by_year
        on claims_by_year.desynpuf_id = beneficiaries.desynpuf_id
        and claims_by_year.claim_year = beneficiaries.beneficiary_year

)

select * from final
