-- Leakage rule of features_high_cost: every row's features equal the beneficiary's row of
-- year t, who is alive at the end of t; rows are training rows (label set) exactly when
-- t+1 is in the data, scoring rows (label null) otherwise.
with features as (

    select * from {{ ref('features_high_cost') }}

),

years as (

    select * from {{ ref('beneficiary_year') }}

),

last_year as (

    select max(beneficiary_year) as last_data_year from years

)

select features.desynpuf_id, features.feature_year
from features
cross join last_year
left join years as feature_year
    on feature_year.desynpuf_id = features.desynpuf_id
    and feature_year.beneficiary_year = features.feature_year
where feature_year.desynpuf_id is null
    or not feature_year.is_alive_at_year_end
    or feature_year.chronic_condition_count <> features.chronic_condition_count
    or feature_year.summary_medicare_total_amount <> features.summary_medicare_total_amount
    or feature_year.claims_payment_amount <> features.claims_payment_amount
    or features.is_training_row <> (features.feature_year < last_year.last_data_year)
    or (features.is_high_cost_next_year is null) = features.is_training_row
