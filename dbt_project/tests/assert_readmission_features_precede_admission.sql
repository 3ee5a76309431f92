-- Leakage rule of features_readmission: the summary of the year before admission exists
-- and supplies the flags, that year's comorbidity supplies the indices, the last earlier discharge lies before the admission, and the
-- label is set exactly on training rows.
with features as (

    select * from {{ ref('features_readmission') }}

),

summaries as (

    select * from {{ ref('beneficiary') }}

)

select
    features.admission_id,
    features.admission_date,
    features.days_since_last_discharge
from features
left join summaries as prior_year
    on prior_year.desynpuf_id = features.desynpuf_id
        and prior_year.beneficiary_year = year(features.admission_date) - 1
left join {{ ref('comorbidity_beneficiary_year') }} as prior_comorbidity
    on prior_comorbidity.desynpuf_id = features.desynpuf_id
        and prior_comorbidity.beneficiary_year = year(features.admission_date) - 1
where prior_year.desynpuf_id is null
    or not (prior_comorbidity.charlson_index <=> features.prior_year_charlson_index)
    or not (prior_comorbidity.elixhauser_index <=> features.prior_year_elixhauser_index)
    or prior_year.chronic_condition_count <> features.chronic_condition_count
    or features.days_since_last_discharge <= 0
    or features.discharge_date < features.admission_date
    or (features.is_readmitted_30d is null) = features.is_training_row
