-- Evidence for the split-claim rule of fct_claims (and readmission__claim_stays), on bronze
-- (the raw text of the CSVs). Compile with `cms-pipeline dbt compile -s split_claim_segments`
-- and run the SQL of target/compiled/ in Spark (DuckDB on the CSVs gives the same figures).
-- Part 1, per SEGMENT: rows, rows with claim dates, with a diagnosis, with DRG OTH/000,
-- payments. Part 2 (the last select): each split claim, its segments' payments and
-- deductibles, the summary file's MEDREIMB_IP and BENRES_IP of its beneficiary and
-- through-date year, and how many inpatient claims that beneficiary-year holds.
-- Measured on samples 1+2 (2026-12-07): segment 1 11,652 rows; segment 2 11 rows, none
-- with CLM_FROM_DT/CLM_THRU_DT or ICD9_DGNS_CD_1, all with DRG OTH/000, CLM_ADMSN_DT
-- before segment 1's in 8 and equal in 3. The 8 claims alone in their beneficiary-year:
-- MEDREIMB_IP = segment 1's CLM_PMT_AMT in 6, close in 2 (10,500 vs 10,000; 33,100 vs
-- 32,000), never segment 1 + 2; BENRES_IP = segment 1's deductible in all 8.
with inpatient as (

    select * from {{ source('bronze', 'inpatient_claims') }}

),

summary as (

    select * from {{ source('bronze', 'beneficiary_summary') }}

),

-- part 1 (unused unless selected instead of compared, on the last lines)
segments as (  -- noqa: ST03

    select
        SEGMENT as segment,
        count(*) as row_count,
        count(CLM_FROM_DT) as with_from_date,
        count(CLM_THRU_DT) as with_thru_date,
        count(ICD9_DGNS_CD_1) as with_diagnosis,
        count_if(CLM_DRG_CD in ('OTH', '000')) as with_drg_oth_000,
        sum(cast(CLM_PMT_AMT as decimal(12, 2))) as payment_amount
    from inpatient
    group by SEGMENT

),

split_claims as (

    select
        CLM_ID as claim_id,
        DESYNPUF_ID as desynpuf_id,
        max(case when SEGMENT = '1' then CLM_THRU_DT end) as segment_1_thru_date,
        max(case when SEGMENT = '1' then CLM_ADMSN_DT end) as segment_1_admission_date,
        max(case when SEGMENT = '2' then CLM_ADMSN_DT end) as segment_2_admission_date,
        sum(case when SEGMENT = '1' then cast(CLM_PMT_AMT as decimal(12, 2)) end) as segment_1_payment,
        sum(case when SEGMENT = '2' then cast(CLM_PMT_AMT as decimal(12, 2)) end) as segment_2_payment,
        sum(case when SEGMENT = '1' then cast(NCH_BENE_IP_DDCTBL_AMT as decimal(12, 2)) end) as segment_1_deductible,
        sum(case when SEGMENT = '2' then cast(NCH_BENE_IP_DDCTBL_AMT as decimal(12, 2)) end) as segment_2_deductible
    from inpatient
    group by CLM_ID, DESYNPUF_ID
    having count(*) > 1

),

claims_in_year as (

    select
        DESYNPUF_ID as desynpuf_id,
        substr(CLM_THRU_DT, 1, 4) as claim_year,
        count(distinct CLM_ID) as inpatient_claim_count
    from inpatient
    where CLM_THRU_DT is not null
    group by DESYNPUF_ID, substr(CLM_THRU_DT, 1, 4)

),

compared as (

    select
        split_claims.*,
        claims_in_year.inpatient_claim_count,
        cast(summary.MEDREIMB_IP as decimal(12, 2)) as summary_medreimb_ip,
        cast(summary.BENRES_IP as decimal(12, 2)) as summary_benres_ip
    from split_claims
    left join claims_in_year
        on claims_in_year.desynpuf_id = split_claims.desynpuf_id
            and claims_in_year.claim_year = substr(split_claims.segment_1_thru_date, 1, 4)
    left join summary
        on summary.DESYNPUF_ID = split_claims.desynpuf_id
            and cast(summary.year as string) = substr(split_claims.segment_1_thru_date, 1, 4)

)

-- select * from segments
select * from compared
order by claim_id
