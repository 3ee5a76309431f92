-- Reference figures of tests/integration/test_gold_reference.py (issue 28 item 8), computed
-- with DuckDB from the raw CMS files, independently of the dbt models. Views `inpatient`,
-- `outpatient`, `carrier`, `pde` and `summary` hold every column as text, as shipped, with
-- the file name in `filename`. Statements are separated by `-- name: <name>`; the ones that
-- return rows are compared with the published gold build.
-- A claim = one CLM_ID of its setting (PDE_ID for drug events); a split institutional claim
-- counts as its first segment (lowest SEGMENT): its payment and its through date. Its year =
-- the year of that through date (SRVC_DT for drug events). Carrier payment = the 13 line
-- payments summed; drug event payment = gross drug cost (TOT_RX_CST_AMT).

-- name: claims
create or replace table claims as
with segments as (
    select 'inpatient' as claim_type, CLM_ID, DESYNPUF_ID, SEGMENT, CLM_THRU_DT, CLM_PMT_AMT from inpatient
    union all
    select 'outpatient', CLM_ID, DESYNPUF_ID, SEGMENT, CLM_THRU_DT, CLM_PMT_AMT from outpatient
),
institutional as (
    select
        claim_type,
        CLM_ID as claim_id,
        arg_min(DESYNPUF_ID, cast(SEGMENT as int)) as desynpuf_id,
        arg_min(CLM_THRU_DT, cast(SEGMENT as int)) as through_date,
        coalesce(arg_min(cast(CLM_PMT_AMT as decimal(12, 2)), cast(SEGMENT as int)), 0) as payment_amount
    from segments
    group by claim_type, CLM_ID
),
carrier_claims as (
    select
        'carrier' as claim_type,
        CLM_ID as claim_id,
        DESYNPUF_ID as desynpuf_id,
        CLM_THRU_DT as through_date,
        coalesce(cast(LINE_NCH_PMT_AMT_1 as decimal(12, 2)), 0)
        + coalesce(cast(LINE_NCH_PMT_AMT_2 as decimal(12, 2)), 0)
        + coalesce(cast(LINE_NCH_PMT_AMT_3 as decimal(12, 2)), 0)
        + coalesce(cast(LINE_NCH_PMT_AMT_4 as decimal(12, 2)), 0)
        + coalesce(cast(LINE_NCH_PMT_AMT_5 as decimal(12, 2)), 0)
        + coalesce(cast(LINE_NCH_PMT_AMT_6 as decimal(12, 2)), 0)
        + coalesce(cast(LINE_NCH_PMT_AMT_7 as decimal(12, 2)), 0)
        + coalesce(cast(LINE_NCH_PMT_AMT_8 as decimal(12, 2)), 0)
        + coalesce(cast(LINE_NCH_PMT_AMT_9 as decimal(12, 2)), 0)
        + coalesce(cast(LINE_NCH_PMT_AMT_10 as decimal(12, 2)), 0)
        + coalesce(cast(LINE_NCH_PMT_AMT_11 as decimal(12, 2)), 0)
        + coalesce(cast(LINE_NCH_PMT_AMT_12 as decimal(12, 2)), 0)
        + coalesce(cast(LINE_NCH_PMT_AMT_13 as decimal(12, 2)), 0) as payment_amount
    from carrier
),
drug_events as (
    select
        'pde' as claim_type,
        PDE_ID as claim_id,
        DESYNPUF_ID as desynpuf_id,
        SRVC_DT as through_date,
        coalesce(cast(TOT_RX_CST_AMT as decimal(12, 2)), 0) as payment_amount
    from pde
),
all_claims as (
    select * from institutional
    union all
    select * from carrier_claims
    union all
    select * from drug_events
)
select
    claim_type,
    claim_id,
    desynpuf_id,
    cast(substr(through_date, 1, 4) as int) as claim_year,
    payment_amount
from all_claims;

-- name: summary_years
-- one row per beneficiary and summary year (the year is in the file name), with the
-- summary file's Medicare reimbursements per setting
create or replace table summary_years as
select
    DESYNPUF_ID as desynpuf_id,
    cast(regexp_extract(filename, 'DE1_0_([0-9]{4})_Beneficiary', 1) as int) as summary_year,
    coalesce(cast(MEDREIMB_IP as decimal(12, 2)), 0) as medreimb_ip,
    coalesce(cast(MEDREIMB_OP as decimal(12, 2)), 0) as medreimb_op,
    coalesce(cast(MEDREIMB_CAR as decimal(12, 2)), 0) as medreimb_car
from summary;

-- name: beneficiary_years
select
    count(*) as beneficiary_year_count,
    count(distinct (desynpuf_id, summary_year)) as distinct_beneficiary_year_count,
    count(distinct desynpuf_id) as beneficiary_count
from summary_years;

-- name: beneficiary_years_by_year
select summary_year as beneficiary_year, count(*) as beneficiary_year_count
from summary_years
group by summary_year
order by summary_year;

-- name: claims_by_type
select claim_type, count(*) as claim_count
from claims
group by claim_type
order by claim_type;

-- name: payments_by_year_and_type
-- every claim (gold.fct_claims), by type and through-date year (null: no through date)
select claim_type, claim_year, count(*) as claim_count, sum(payment_amount) as payment_amount
from claims
group by claim_type, claim_year
order by claim_type, claim_year;

-- name: placed_payments_by_year_and_type
-- the claims a summary row holds (gold.beneficiary_year), by type and year
select claims.claim_type, claims.claim_year, count(*) as claim_count, sum(claims.payment_amount) as payment_amount
from claims
inner join summary_years
    on summary_years.desynpuf_id = claims.desynpuf_id
    and summary_years.summary_year = claims.claim_year
group by claims.claim_type, claims.claim_year
order by claims.claim_type, claims.claim_year;

-- name: summary_against_claims_by_year_and_setting
-- the summary file's Medicare reimbursement per setting and year against the placed
-- claims' payments (gold.reconcile_summary_state_year, measure medicare_paid, summed over
-- states): beneficiary-years with money on either side, those equal to the cent, and both
-- totals
with placed as (
    select desynpuf_id, claim_year, claim_type, sum(payment_amount) as payment_amount
    from claims
    where claim_type in ('inpatient', 'outpatient', 'carrier')
    group by desynpuf_id, claim_year, claim_type
),
paired as (
    select
        summary_years.summary_year as beneficiary_year,
        settings.setting,
        case settings.setting
            when 'inpatient' then summary_years.medreimb_ip
            when 'outpatient' then summary_years.medreimb_op
            else summary_years.medreimb_car
        end as summary_amount,
        coalesce(placed.payment_amount, 0) as claims_amount
    from summary_years
    cross join (values ('inpatient'), ('outpatient'), ('carrier')) as settings (setting)
    left join placed
        on placed.desynpuf_id = summary_years.desynpuf_id
        and placed.claim_year = summary_years.summary_year
        and placed.claim_type = settings.setting
)
select
    beneficiary_year,
    setting,
    count(*) as beneficiary_year_count,
    count(*) filter (where summary_amount = claims_amount) as matched_count,
    sum(summary_amount) as summary_amount,
    sum(claims_amount) as claims_amount
from paired
where summary_amount <> 0 or claims_amount <> 0
group by beneficiary_year, setting
order by beneficiary_year, setting;
