-- Leakage rule of features_high_cost: every feature equals the beneficiary's row of year t
-- (null-safe, column by column) and their comorbidity of t, and they are alive at the end
-- of t; rows are training rows
-- (label set) exactly when t+1 is in the data, scoring rows (label null) otherwise.
{%- set same_name = [
    'age', 'sex_code', 'race_code', 'state_code', 'chronic_condition_count',
    'part_a_coverage_months', 'part_b_coverage_months', 'hmo_coverage_months',
    'part_d_coverage_months', 'inpatient_claim_count', 'outpatient_claim_count',
    'carrier_claim_count', 'pde_claim_count', 'inpatient_days', 'inpatient_payment_amount',
    'outpatient_payment_amount', 'carrier_payment_amount', 'pde_payment_amount',
    'claims_payment_amount', 'summary_medicare_ip_amount', 'summary_medicare_op_amount',
    'summary_medicare_carrier_amount', 'summary_medicare_total_amount',
    'summary_beneficiary_total_amount',
] %}
{%- set comorbidity = [
    'charlson_index', 'charlson_category_count', 'elixhauser_index', 'elixhauser_category_count',
] %}
{%- set flags = ['has_esrd'] %}
{%- for column, code in chronic_condition_columns() %}{% do flags.append(column) %}{% endfor %}
with features as (

    select * from {{ ref('features_high_cost') }}

),

years as (

    select * from {{ ref('beneficiary_year') }}

),

comorbidities as (

    select * from {{ ref('comorbidity_beneficiary_year') }}

),

last_year as (

    select max(beneficiary_year) as last_data_year from years

)

select
    features.desynpuf_id,
    features.feature_year
from features
cross join last_year
left join years as feature_year
    on feature_year.desynpuf_id = features.desynpuf_id
        and feature_year.beneficiary_year = features.feature_year
left join comorbidities
    on comorbidities.desynpuf_id = features.desynpuf_id
        and comorbidities.beneficiary_year = features.feature_year
where feature_year.desynpuf_id is null
    or comorbidities.desynpuf_id is null
    or not feature_year.is_alive_at_year_end
    {%- for column in same_name %}
    or not (feature_year.{{ column }} <=> features.{{ column }})
    {%- endfor %}
    {%- for column in comorbidity %}
    or not (comorbidities.{{ column }} <=> features.{{ column }})
    {%- endfor %}
    {%- for column in flags %}
    or not (cast(feature_year.{{ column }} as int) <=> features.{{ column }})
    {%- endfor %}
    or features.is_training_row <> (features.feature_year < last_year.last_data_year)
    or (features.is_high_cost_next_year is null) = features.is_training_row
