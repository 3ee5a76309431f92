-- Reference hospitalizations and readmissions of tests/integration/test_readmission_reference.py,
-- computed with DuckDB from the raw CMS files (views `inpatient` and `summary`, every column
-- as text, as shipped; `summary` has the file name in `filename`) and the lookup seeds
-- (views dx_ccs, pr_ccs, pr1, pr2, pr3, pr4, exclusions, cohorts; every column as text),
-- written from the rules in plain SQL, independently of the dbt models:
--   * a claim is a stay of its lowest SEGMENT (dates, provider, DRG, principal diagnosis);
--   * a stay overlapping the previous discharge, or starting on it or the day after at a
--     different provider, is the same hospitalization (a transfer); diagnosis, DRG and
--     provider come from its first claim, even when that claim has none (arg_min_null:
--     plain arg_min would skip a missing diagnosis and take another claim's);
--   * index: alive at discharge (summary death date), not transferred out, discharged 30+
--     days before $data_end_date, in an HWR specialty cohort, not in an excluded CCS, not
--     followed the same day by a same-provider same-CCS stay;
--   * planned (PAA v4): any PR1 procedure, a PR2 principal diagnosis, or any PR3 procedure
--     with a non-PR4 principal diagnosis;
--   * readmitted: an index admission whose next hospitalization starts within 30 days and
--     is not planned.
--   * rates: index admissions and those readmitted by discharge year, state (the summary of
--     the discharge year, else the latest summary) and cohort, with 'ALL' roll-ups.
-- Statements are separated by `-- name: <name>`; parameters $data_end_date (a date),
-- $window_days and $transfer_gap_days (integers), the dbt vars of dbt_project.yml.

-- name: stays
create or replace table stays as
with segments as (
    select
        CLM_ID as claim_id,
        DESYNPUF_ID as desynpuf_id,
        row_number() over (partition by CLM_ID order by cast(SEGMENT as int)) as segment_rank,
        strptime(coalesce(CLM_ADMSN_DT, CLM_FROM_DT), '%Y%m%d')::date as admission_date,
        strptime(coalesce(NCH_BENE_DSCHRG_DT, CLM_THRU_DT), '%Y%m%d')::date as discharge_date,
        PRVDR_NUM as provider_id,
        CLM_DRG_CD as drg_code,
        ICD9_DGNS_CD_1 as principal_icd9_dgns_cd
    from inpatient
)
select * exclude (segment_rank) from segments where segment_rank = 1;

-- name: hospitalizations
create or replace table hospitalizations as
with ordered as (
    select
        *,
        max(discharge_date) over (
            partition by desynpuf_id order by admission_date, discharge_date, claim_id
            rows between unbounded preceding and 1 preceding
        ) as previous_discharge,
        lag(provider_id) over (
            partition by desynpuf_id order by admission_date, discharge_date, claim_id
        ) as previous_provider
    from stays
),
numbered as (
    select
        *,
        sum(
            case
                when previous_discharge is null then 1
                when admission_date < previous_discharge then 0
                when admission_date <= previous_discharge + $transfer_gap_days::int
                    and provider_id is distinct from previous_provider then 0
                else 1
            end
        ) over (
            partition by desynpuf_id order by admission_date, discharge_date, claim_id
            rows between unbounded preceding and current row
        ) as hospitalization_number
    from ordered
)
select
    arg_min_null(claim_id, (admission_date, discharge_date, claim_id)) as admission_id,
    desynpuf_id,
    min(admission_date) as admission_date,
    max(discharge_date) as discharge_date,
    arg_min_null(principal_icd9_dgns_cd, (admission_date, discharge_date, claim_id)) as principal_icd9_dgns_cd,
    arg_min_null(drg_code, (admission_date, discharge_date, claim_id)) as drg_code,
    arg_min_null(provider_id, (admission_date, discharge_date, claim_id)) as provider_id,
    arg_max_null(provider_id, (discharge_date, admission_date, claim_id)) as discharge_provider_id,
    count(*) as claim_count,
    list(claim_id) as claim_ids
from numbered
group by desynpuf_id, hospitalization_number;

-- name: procedures
create or replace table procedures as
with codes as (
    unpivot inpatient
    on ICD9_PRCDR_CD_1, ICD9_PRCDR_CD_2, ICD9_PRCDR_CD_3, ICD9_PRCDR_CD_4, ICD9_PRCDR_CD_5, ICD9_PRCDR_CD_6
    into name position value code
),
claim_to_hospitalization as (
    select admission_id, unnest(claim_ids) as claim_id from hospitalizations
)
select distinct claim_to_hospitalization.admission_id, codes.code, pr_ccs.ccs_category
from codes
join claim_to_hospitalization on claim_to_hospitalization.claim_id = codes.CLM_ID
left join pr_ccs on pr_ccs.icd9_prcdr_code = codes.code;

-- name: classified
create or replace table classified as
with deaths as (
    select DESYNPUF_ID as desynpuf_id, min(strptime(BENE_DEATH_DT, '%Y%m%d')::date) as death_date
    from summary
    group by DESYNPUF_ID
),
with_ccs as (
    select hospitalizations.*, dx_ccs.ccs_category as principal_ccs
    from hospitalizations
    left join dx_ccs on dx_ccs.icd9_dx_code = hospitalizations.principal_icd9_dgns_cd
),
with_next as (
    select
        *,
        lead(admission_id) over next_stay as next_admission_id,
        lead(admission_date) over next_stay as next_admission_date,
        lead(provider_id) over next_stay as next_provider_id,
        lead(principal_ccs) over next_stay as next_principal_ccs
    from with_ccs
    window next_stay as (partition by desynpuf_id order by admission_date, admission_id)
),
surgical as (
    select distinct procedures.admission_id
    from procedures
    join cohorts on cohorts.ccs_category = procedures.ccs_category and cohorts.code_kind = 'procedure'
),
procedure_flags as (
    select
        admission_id,
        bool_or(ccs_category in (select ccs_category from pr1)) as has_pr1_procedure,
        bool_or(ccs_category in (select ccs_category from pr3)) as has_pr3_procedure
    from procedures
    group by admission_id
),
planned as (
    select
        with_ccs.admission_id,
        coalesce(procedure_flags.has_pr1_procedure, false)
        or coalesce(with_ccs.principal_ccs in (select ccs_category from pr2), false)
        or (
            coalesce(procedure_flags.has_pr3_procedure, false)
            and not coalesce(with_ccs.principal_ccs in (select ccs_category from pr4), false)
        ) as is_planned
    from with_ccs
    left join procedure_flags on procedure_flags.admission_id = with_ccs.admission_id
)
select
    with_next.admission_id,
    with_next.desynpuf_id,
    with_next.admission_date,
    with_next.discharge_date,
    with_next.claim_count,
    with_next.principal_ccs as principal_ccs_category,
    with_next.next_admission_id,
    with_next.next_admission_date,
    case when surgical.admission_id is not null then 'surgery_gynecology' else dx_cohort.specialty_cohort end as specialty_cohort,
    exclusions.exclusion_reason,
    planned.is_planned,
    coalesce(deaths.death_date > with_next.discharge_date, true)
    and with_next.discharge_date >= with_next.admission_date
    and not coalesce(
        with_next.next_admission_date <= with_next.discharge_date + $transfer_gap_days::int
        and with_next.next_provider_id is distinct from with_next.discharge_provider_id, false)
    and with_next.discharge_date <= $data_end_date::date - $window_days::int
    and (surgical.admission_id is not null or dx_cohort.specialty_cohort is not null)
    and exclusions.exclusion_reason is null
    and not coalesce(
        with_next.next_admission_date = with_next.discharge_date
        and with_next.next_provider_id = with_next.discharge_provider_id
        and with_next.next_principal_ccs = with_next.principal_ccs, false)
        as is_index_admission
from with_next
join planned on planned.admission_id = with_next.admission_id
left join surgical on surgical.admission_id = with_next.admission_id
left join cohorts as dx_cohort on dx_cohort.ccs_category = with_next.principal_ccs and dx_cohort.code_kind = 'diagnosis'
left join exclusions on exclusions.ccs_category = with_next.principal_ccs
left join deaths on deaths.desynpuf_id = with_next.desynpuf_id;

-- name: readmissions
-- one row per hospitalization with its index and readmission flags
create or replace table readmissions as
select
    classified.admission_id,
    classified.desynpuf_id,
    classified.admission_date,
    classified.discharge_date,
    year(classified.discharge_date) as discharge_year,
    classified.claim_count,
    classified.principal_ccs_category,
    classified.specialty_cohort,
    classified.exclusion_reason,
    classified.is_planned,
    classified.is_index_admission,
    coalesce(
        classified.is_index_admission
        and classified.next_admission_date - classified.discharge_date <= $window_days::int
        and not next_stay.is_planned, false
    ) as is_readmitted_30d
from classified
left join classified as next_stay on next_stay.admission_id = classified.next_admission_id;

-- name: admissions
select * from readmissions order by admission_id;

-- name: rates
-- observed rates of the index admissions by discharge year, state and cohort, and roll-ups
with summary_states as (
    select
        DESYNPUF_ID as desynpuf_id,
        cast(regexp_extract(filename, 'DE1_0_([0-9]{4})_Beneficiary', 1) as int) as summary_year,
        lpad(trim(SP_STATE_CODE), 2, '0') as state_code
    from summary
),
latest_states as (
    select desynpuf_id, arg_max_null(state_code, summary_year) as state_code
    from summary_states
    group by desynpuf_id
),
index_admissions as (
    select
        readmissions.discharge_year,
        coalesce(summary_states.state_code, latest_states.state_code) as state_code,
        readmissions.specialty_cohort,
        readmissions.is_readmitted_30d
    from readmissions
    left join summary_states
        on summary_states.desynpuf_id = readmissions.desynpuf_id
        and summary_states.summary_year = readmissions.discharge_year
    left join latest_states on latest_states.desynpuf_id = readmissions.desynpuf_id
    where readmissions.is_index_admission
)
select
    discharge_year,
    case when grouping(state_code) = 1 then 'ALL' else state_code end as state_code,
    case when grouping(specialty_cohort) = 1 then 'ALL' else specialty_cohort end as specialty_cohort,
    count(*) as index_admission_count,
    count(*) filter (where is_readmitted_30d) as readmission_count
from index_admissions
group by grouping sets (
    (discharge_year, state_code, specialty_cohort),
    (discharge_year, state_code),
    (discharge_year, specialty_cohort),
    (discharge_year)
)
order by all;
