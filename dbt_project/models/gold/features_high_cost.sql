-- ML features for next-year high cost: one row per beneficiary and feature year t, label
-- is_high_cost_next_year = top 10% (`high_cost_quantile`) of Medicare payments in t+1
-- among beneficiaries alive and enrolled through t+1. Leakage rule: every feature comes
-- from year t (beneficiary_year of t); year t+1 only decides the label and who is in.
-- Payments are the summary file's Medicare reimbursements (IP + OP + carrier), which
-- cover every setting even when claim files are partial.
with {{ import_refs(beneficiary_years='beneficiary_year') }},

label_population as (

    -- alive at the end of t+1 with Part A or B coverage in t+1
    select
        desynpuf_id,
        beneficiary_year as label_year,
        summary_medicare_total_amount as label_payment_amount
    from beneficiary_years
    where is_alive_at_year_end and member_months > 0

),

labels as (

    select
        desynpuf_id,
        label_year,
        case
            when cume_dist() over (partition by label_year order by label_payment_amount)
                > {{ var('high_cost_quantile') }} then 1
            else 0
        end as is_high_cost_next_year
    from label_population

),

final as (

    select
        features.desynpuf_id,
        features.beneficiary_year as feature_year,
        labels.is_high_cost_next_year,
        features.age,
        features.sex_code,
        features.race_code,
        features.state_code,
        cast(features.has_esrd as int) as has_esrd,
        {%- for column, code in chronic_condition_columns() %}
        cast(features.{{ column }} as int) as {{ column }},
        {%- endfor %}
        features.chronic_condition_count,
        features.part_a_coverage_months,
        features.part_b_coverage_months,
        features.hmo_coverage_months,
        features.part_d_coverage_months,
        features.inpatient_claim_count,
        features.outpatient_claim_count,
        features.carrier_claim_count,
        features.pde_claim_count,
        features.inpatient_days,
        features.inpatient_payment_amount,
        features.outpatient_payment_amount,
        features.carrier_payment_amount,
        features.pde_payment_amount,
        features.claims_payment_amount,
        features.summary_medicare_ip_amount,
        features.summary_medicare_op_amount,
        features.summary_medicare_carrier_amount,
        features.summary_medicare_total_amount,
        features.summary_beneficiary_total_amount
    from beneficiary_years as features
    inner join labels
        on labels.desynpuf_id = features.desynpuf_id
        and labels.label_year = features.beneficiary_year + 1

)

select * from final
