-- ML features for 30-day readmission: one row per admission that can be an index
-- admission (alive at discharge, valid dates, no excluded principal diagnosis) of a
-- beneficiary with a summary of the year before admission (12 months of history: the
-- cohort rule, and no missing-history pattern that would stand in for the year).
-- One definition for training and scoring:
--   * discharges whose whole 30-day window is in the data: label is_readmitted_30d known
--     (`is_training_row`);
--   * later discharges (window still open at the end of the data): scoring rows, label null.
-- Leakage rules (unit tests in _features.yml, tests/assert_readmission_*):
--   * history windows end before the index admission starts (stays discharged before
--     it, outpatient claims ended before it, within `lookback_days`);
--   * the index stay contributes only what is known at discharge (dates, DRG, codes);
--   * chronic-condition flags, coverage and state come from the summary of the year
--     BEFORE the admission: a year's flags can be set by events later in that year;
--     so do the Charlson and Elixhauser indices (comorbidity_beneficiary_year of that
--     year: its claims' diagnoses), for the same reason.
with {{ import_refs(
    admissions='inpatient_admissions',
    merged_stays='readmission__transfers_merged',
    beneficiaries='beneficiary',
    people='dim_beneficiary',
    comorbidities='comorbidity_beneficiary_year',
) }},

index_admissions as (

    select admissions.*
    from admissions
    inner join beneficiaries as prior_year
        on prior_year.desynpuf_id = admissions.desynpuf_id
            and prior_year.beneficiary_year = year(admissions.admission_date) - 1
    where admissions.is_alive_at_discharge
        and admissions.has_valid_dates
        and admissions.exclusion_reason is null

),

outpatient as (

    select * from {{ ref('fct_claims') }}
    where claim_type = 'outpatient'

),

diagnoses as (

    select * from {{ ref('claim_diagnoses') }}
    where claim_type = 'inpatient'

),

procedures as (

    select * from {{ ref('claim_procedures') }}
    where claim_type = 'inpatient'

),

prior_admissions as (

    select
        index_admissions.admission_id,
        count(history.admission_id) as prior_admission_count,
        coalesce(sum(history.length_of_stay_days), 0) as prior_inpatient_days,
        coalesce(sum(history.payment_amount), 0) as prior_inpatient_payment_amount,
        datediff(index_admissions.admission_date, max(history.discharge_date))
            as days_since_last_discharge
    from index_admissions
    left join admissions as history
        on history.desynpuf_id = index_admissions.desynpuf_id
            and history.discharge_date < index_admissions.admission_date
            and history.admission_date >= date_sub(index_admissions.admission_date, {{ var('lookback_days') }})
    group by index_admissions.admission_id, index_admissions.admission_date

),

prior_outpatient as (

    select
        index_admissions.admission_id,
        count(history.claim_id) as prior_outpatient_claim_count,
        coalesce(sum(history.payment_amount), 0) as prior_outpatient_payment_amount
    from index_admissions
    left join outpatient as history
        on history.desynpuf_id = index_admissions.desynpuf_id
            and history.claim_end_date < index_admissions.admission_date
            and history.claim_start_date >= date_sub(index_admissions.admission_date, {{ var('lookback_days') }})
    group by index_admissions.admission_id

),

stay_claims as (

    select
        admission_id,
        claim_id
    from merged_stays
        lateral view explode(claim_ids) claims as claim_id

),

stay_codes as (

    select
        stay_claims.admission_id,
        count(distinct diagnoses.icd9_dgns_cd) as diagnosis_count,
        count(distinct procedures.icd9_prcdr_cd) as procedure_count
    from stay_claims
    left join diagnoses
        on diagnoses.claim_id = stay_claims.claim_id
    left join procedures
        on procedures.claim_id = stay_claims.claim_id
    group by stay_claims.admission_id

),

final as (

    select
        index_admissions.admission_id,
        index_admissions.desynpuf_id,
        index_admissions.admission_date,
        index_admissions.discharge_date,
        index_admissions.discharge_year,
        index_admissions.is_window_observed as is_training_row,
        case
            when index_admissions.is_window_observed
                then cast(index_admissions.is_readmitted_30d as int)
        end as is_readmitted_30d,
        cast(floor(months_between(index_admissions.admission_date, people.birth_date) / 12) as int)
            as age_at_admission,
        people.sex_code,
        people.race_code,
        prior_year.state_code,
        {%- for column, code in chronic_condition_columns() %}
        cast(prior_year.{{ column }} as int) as {{ column }},
        {%- endfor %}
        prior_year.chronic_condition_count,
        cast(prior_year.has_esrd as int) as has_esrd,
        prior_year.part_a_coverage_months as prior_year_part_a_coverage_months,
        prior_year.part_d_coverage_months as prior_year_part_d_coverage_months,
        prior_comorbidity.charlson_index as prior_year_charlson_index,
        prior_comorbidity.elixhauser_index as prior_year_elixhauser_index,
        index_admissions.length_of_stay_days,
        index_admissions.claim_count as index_claim_count,
        cast(index_admissions.is_transfer_merged as int) as is_transfer_merged,
        index_admissions.drg_code,
        -- coarse DRG group: the hundreds of the MS-DRG number ('0xx' .. '9xx')
        concat(substr(lpad(index_admissions.drg_code, 3, '0'), 1, 1), 'xx') as drg_group,
        index_admissions.principal_icd9_dgns_cd,
        coalesce(stay_codes.diagnosis_count, 0) as diagnosis_count,
        coalesce(stay_codes.procedure_count, 0) as procedure_count,
        prior_admissions.prior_admission_count as prior_admission_count_365d,
        prior_admissions.prior_inpatient_days as prior_inpatient_days_365d,
        cast(prior_admissions.prior_inpatient_payment_amount as decimal(18, 2))
            as prior_inpatient_payment_365d,
        prior_admissions.days_since_last_discharge,
        prior_outpatient.prior_outpatient_claim_count as prior_outpatient_claim_count_365d,
        cast(prior_outpatient.prior_outpatient_payment_amount as decimal(18, 2))
            as prior_outpatient_payment_365d
    from index_admissions
    left join people
        on people.desynpuf_id = index_admissions.desynpuf_id
    inner join beneficiaries as prior_year
        on prior_year.desynpuf_id = index_admissions.desynpuf_id
            and prior_year.beneficiary_year = year(index_admissions.admission_date) - 1
    left join comorbidities as prior_comorbidity
        on prior_comorbidity.desynpuf_id = index_admissions.desynpuf_id
            and prior_comorbidity.beneficiary_year = year(index_admissions.admission_date) - 1
    left join prior_admissions
        on prior_admissions.admission_id = index_admissions.admission_id
    left join prior_outpatient
        on prior_outpatient.admission_id = index_admissions.admission_id
    left join stay_codes
        on stay_codes.admission_id = index_admissions.admission_id

)

select * from final
