-- ML features for next-year high cost: one row per beneficiary and feature year t, for
-- everyone alive at the end of t and enrolled in t (what is known on `prediction_date`,
-- 31 December of t). One definition for training and scoring:
--   * t before the last data year: the label is known (`is_training_row`);
--     is_high_cost_next_year = top 10% (`high_cost_quantile`) of Medicare payments in t+1
--     within the feature year's population. Decedents of t+1 stay in: their label comes
--     from what was paid for them in t+1; no t+1 summary counts as no payment.
--   * t = the last data year: the scoring population, label null.
-- Leakage rule: every feature comes from year t (beneficiary_year of t, and the Charlson
-- and Elixhauser comorbidity of t's claim diagnoses, comorbidity_beneficiary_year); t+1
-- decides only the label. Payments are the summary file's Medicare reimbursements (IP + OP + carrier),
-- which cover every setting even when claim files are partial.
with {{ import_refs(
    beneficiary_years='beneficiary_year',
    comorbidities='comorbidity_beneficiary_year',
) }},

data_years as (

    select max(beneficiary_year) as last_data_year
    from beneficiary_years

),

population as (

    select beneficiary_years.*
    from beneficiary_years
    where beneficiary_years.is_alive_at_year_end and beneficiary_years.member_months > 0

),

next_year_payments as (

    select
        population.desynpuf_id,
        population.beneficiary_year as feature_year,
        population.beneficiary_year < data_years.last_data_year as is_training_row,
        coalesce(next_year.summary_medicare_total_amount, 0) as label_payment_amount
    from population
    cross join data_years
    left join beneficiary_years as next_year
        on next_year.desynpuf_id = population.desynpuf_id
            and next_year.beneficiary_year = population.beneficiary_year + 1

),

labels as (

    select
        desynpuf_id,
        feature_year,
        is_training_row,
        case
            when not is_training_row then null
            when cume_dist()
                    over (
                        partition by feature_year order by label_payment_amount
                    )
                > {{ var('high_cost_quantile') }} then 1
            else 0
        end as is_high_cost_next_year
    from next_year_payments

),

final as (

    select
        features.desynpuf_id,
        features.beneficiary_year as feature_year,
        make_date(features.beneficiary_year, 12, 31) as prediction_date,
        labels.is_training_row,
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
        features.summary_beneficiary_total_amount,
        comorbidities.charlson_index,
        comorbidities.charlson_category_count,
        comorbidities.elixhauser_index,
        comorbidities.elixhauser_category_count
    from population as features
    inner join labels
        on labels.desynpuf_id = features.desynpuf_id
            and labels.feature_year = features.beneficiary_year
    left join comorbidities
        on comorbidities.desynpuf_id = features.desynpuf_id
            and comorbidities.beneficiary_year = features.beneficiary_year

)

select * from final
