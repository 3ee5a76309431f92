-- Evidence for the split-claim rule of fct_claims on outpatient claims, on bronze: per
-- SEGMENT, rows with claim dates and payments; then each split claim whose beneficiary has
-- a summary row for the year of segment 1's through date, with the segment-1 payments of
-- all that beneficiary-year's outpatient claims against the summary file's MEDREIMB_OP.
-- Compile with `cms-pipeline dbt compile -s split_claim_segments_outpatient`.
-- Measured on sample 1 (2026-12-07; its outpatient file is partial): segment 1 10,978 rows,
-- segment 2 106 rows, none with CLM_FROM_DT/CLM_THRU_DT (2 claims have only a segment 2
-- row). In all 4 beneficiary-years with a split claim and a summary row, MEDREIMB_OP
-- equals the year's segment-1 payments exactly (5,200; 1,030; 6,390; 3,630), never with
-- segment 2's added (1,000; 10; 0; 2,100).
with outpatient as (

    select * from {{ source('bronze', 'outpatient_claims') }}

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
        sum(cast(CLM_PMT_AMT as decimal(12, 2))) as payment_amount
    from outpatient
    group by SEGMENT

),

split_claims as (

    select
        CLM_ID as claim_id,
        DESYNPUF_ID as desynpuf_id,
        max(case when SEGMENT = '1' then substr(CLM_THRU_DT, 1, 4) end) as claim_year,
        sum(case when SEGMENT = '1' then cast(CLM_PMT_AMT as decimal(12, 2)) end) as segment_1_payment,
        sum(case when SEGMENT = '2' then cast(CLM_PMT_AMT as decimal(12, 2)) end) as segment_2_payment
    from outpatient
    group by CLM_ID, DESYNPUF_ID
    having count(*) > 1

),

year_payments as (

    select
        DESYNPUF_ID as desynpuf_id,
        substr(CLM_THRU_DT, 1, 4) as claim_year,
        count(distinct CLM_ID) as outpatient_claim_count,
        sum(cast(CLM_PMT_AMT as decimal(12, 2))) as segment_1_payment_in_year
    from outpatient
    where SEGMENT = '1'
    group by DESYNPUF_ID, substr(CLM_THRU_DT, 1, 4)

),

compared as (

    select
        split_claims.*,
        year_payments.outpatient_claim_count,
        year_payments.segment_1_payment_in_year,
        cast(summary.MEDREIMB_OP as decimal(12, 2)) as summary_medreimb_op
    from split_claims
    inner join summary
        on summary.DESYNPUF_ID = split_claims.desynpuf_id
            and cast(summary.year as string) = split_claims.claim_year
    left join year_payments
        on year_payments.desynpuf_id = split_claims.desynpuf_id
            and year_payments.claim_year = split_claims.claim_year

)

-- select * from segments
select * from compared
order by claim_id
