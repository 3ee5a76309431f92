-- Leakage rule of features_high_cost: every row's features equal the beneficiary's row of
-- year t, and the label year t+1 exists for the beneficiary.
with features as (

    select * from {{ ref('features_high_cost') }}

),

years as (

    select * from {{ ref('beneficiary_year') }}

)

select features.desynpuf_id, features.feature_year
from features
left join years as feature_year
    on feature_year.desynpuf_id = features.desynpuf_id
    and feature_year.beneficiary_year = features.feature_year
left join years as label_year
    on label_year.desynpuf_id = features.desynpuf_id
    and label_year.beneficiary_year = features.feature_year + 1
where feature_year.desynpuf_id is null
    or label_year.desynpuf_id is null
    or feature_year.chronic_condition_count <> features.chronic_condition_count
    or feature_year.summary_medicare_total_amount <> features.summary_medicare_total_amount
    or feature_year.claims_payment_amount <> features.claims_payment_amount
