-- Reference figures of tests/integration/test_claim_semantics.py, computed with DuckDB from
-- the raw CMS files (views `inpatient`, `outpatient`, `summary`: every column as text, as
-- shipped; `summary` has the file name in `filename`), independently of the dbt models.
-- A claim = one CLM_ID of its setting; its first segment = its lowest SEGMENT; its year =
-- the year of that segment's CLM_THRU_DT. Statements are separated by `-- name: <name>`.

-- name: claims
create or replace table claims as
with segments as (
    select 'inpatient' as claim_type, * from inpatient
    union all by name
    select 'outpatient' as claim_type, * from outpatient
),
ranked as (
    select
        claim_type,
        CLM_ID as claim_id,
        DESYNPUF_ID as desynpuf_id,
        cast(SEGMENT as int) as segment,
        row_number() over (partition by claim_type, CLM_ID order by cast(SEGMENT as int)) as segment_rank,
        count(*) over (partition by claim_type, CLM_ID) as segment_count,
        cast(substr(CLM_THRU_DT, 1, 4) as int) as claim_year,
        coalesce(cast(CLM_PMT_AMT as decimal(12, 2)), 0) as payment_amount
    from segments
)
select * exclude (segment_rank) from ranked where segment_rank = 1;

-- name: summary_years
create or replace table summary_years as
select distinct
    DESYNPUF_ID as desynpuf_id,
    cast(regexp_extract(filename, 'DE1_0_([0-9]{4})_Beneficiary', 1) as int) as summary_year,
    cast(MEDREIMB_IP as decimal(12, 2)) as medreimb_ip
from summary;

-- name: placement_by_claim_type
-- per claim type: all claims, those with a summary row for their beneficiary and year
-- (placed), the others (unplaced); counts and segment-1 payments
select
    claims.claim_type,
    count(*) as claim_count,
    sum(claims.payment_amount) as payment_amount,
    count(summary_years.desynpuf_id) as placed_claim_count,
    coalesce(sum(claims.payment_amount) filter (where summary_years.desynpuf_id is not null), 0) as placed_payment_amount,
    count(*) - count(summary_years.desynpuf_id) as unplaced_claim_count,
    coalesce(sum(claims.payment_amount) filter (where summary_years.desynpuf_id is null), 0) as unplaced_payment_amount
from claims
left join summary_years
    on summary_years.desynpuf_id = claims.desynpuf_id
    and summary_years.summary_year = claims.claim_year
group by claims.claim_type
order by claims.claim_type;

-- name: split_only_inpatient_years
-- beneficiary-years (summary row present) whose only inpatient claim is split: that
-- claim's segment-1 and later-segment payments, and the summary file's MEDREIMB_IP
with segment_payments as (
    select
        CLM_ID as claim_id,
        sum(cast(CLM_PMT_AMT as decimal(12, 2))) filter (where cast(SEGMENT as int) > 1) as later_segment_payment
    from inpatient
    group by CLM_ID
),
claims_in_year as (
    select
        desynpuf_id,
        claim_year,
        count(*) as claim_count,
        max(segment_count) as segment_count,
        sum(payment_amount) as segment_1_payment,
        max(claim_id) as claim_id
    from claims
    where claim_type = 'inpatient'
    group by desynpuf_id, claim_year
)
select
    claims_in_year.desynpuf_id,
    claims_in_year.claim_year,
    claims_in_year.segment_1_payment,
    segment_payments.later_segment_payment,
    summary_years.medreimb_ip
from claims_in_year
inner join summary_years
    on summary_years.desynpuf_id = claims_in_year.desynpuf_id
    and summary_years.summary_year = claims_in_year.claim_year
inner join segment_payments
    on segment_payments.claim_id = claims_in_year.claim_id
where claims_in_year.claim_count = 1 and claims_in_year.segment_count > 1
order by claims_in_year.desynpuf_id, claims_in_year.claim_year;

-- name: split_inpatient_stays
-- split inpatient claims: segment 1's admission date, through date and DRG, and the
-- earliest admission date and a DRG of its other segments
select
    CLM_ID as claim_id,
    strptime(max(CLM_ADMSN_DT) filter (where SEGMENT = '1'), '%Y%m%d')::date as admission_date,
    strptime(max(CLM_THRU_DT) filter (where SEGMENT = '1'), '%Y%m%d')::date as claim_end_date,
    max(CLM_DRG_CD) filter (where SEGMENT = '1') as drg_code,
    strptime(min(CLM_ADMSN_DT) filter (where SEGMENT <> '1'), '%Y%m%d')::date as later_segment_admission_date,
    max(CLM_DRG_CD) filter (where SEGMENT <> '1') as later_segment_drg_code
from inpatient
group by CLM_ID
having count(*) > 1
order by CLM_ID;
