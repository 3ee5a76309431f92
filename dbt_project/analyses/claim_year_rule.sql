-- Evidence for the year rule of fct_claims (claim_year = year of the through date), on
-- bronze: per rule (claim start, through date, admission date, discharge date), the
-- beneficiary-years whose segment-1 inpatient payments equal the summary file's MEDREIMB_IP
-- (within 0.50), and the claim payments the rule places in a summary beneficiary-year.
-- Compile with `cms-pipeline dbt compile -s claim_year_rule`; run the compiled SQL in Spark.
-- Measured on samples 1+2 (2026-12-07), 11,652 segment-1 claims, 111,430,390 paid:
--   through date / discharge date: 5,115 of 8,074 beneficiary-years exact (63.35%), every
--     dollar placed (no claim ends before 2008);
--   start date / admission date: 4,985 of 8,144 (61.21%); 41 claims (368,000) start in
--     2007 and are placed nowhere.
-- The inpatient through date equals the discharge date on every segment-1 row; the
-- admission date differs from the start date on 17.
with inpatient as (

    select * from {{ source('bronze', 'inpatient_claims') }}
    where SEGMENT = '1'

),

summary as (

    select
        DESYNPUF_ID as desynpuf_id,
        cast(year as int) as summary_year,
        cast(MEDREIMB_IP as decimal(12, 2)) as summary_medreimb_ip
    from {{ source('bronze', 'beneficiary_summary') }}

),

claim_years as (

    select
        DESYNPUF_ID as desynpuf_id,
        cast(CLM_PMT_AMT as decimal(12, 2)) as payment_amount,
        stack(
            4,
            'claim_start', cast(substr(CLM_FROM_DT, 1, 4) as int),
            'through', cast(substr(CLM_THRU_DT, 1, 4) as int),
            'admission', cast(substr(coalesce(CLM_ADMSN_DT, CLM_FROM_DT), 1, 4) as int),
            'discharge', cast(substr(NCH_BENE_DSCHRG_DT, 1, 4) as int)
        ) as (rule, claim_year)
    from inpatient

),

by_rule as (

    select
        rule,
        desynpuf_id,
        claim_year,
        sum(payment_amount) as payment_amount
    from claim_years
    group by rule, desynpuf_id, claim_year

),

rules as (

    select distinct rule from by_rule

),

compared as (

    select
        rules.rule,
        count(*) as beneficiary_years,
        count_if(abs(coalesce(by_rule.payment_amount, 0) - summary.summary_medreimb_ip) < 0.5) as exact_years,
        round(
            100.0 * count_if(abs(coalesce(by_rule.payment_amount, 0) - summary.summary_medreimb_ip) < 0.5) / count(*), 2
        ) as exact_pct,
        sum(by_rule.payment_amount) as placed_payment_amount
    from summary
    cross join rules
    left join by_rule
        on by_rule.rule = rules.rule
            and by_rule.desynpuf_id = summary.desynpuf_id
            and by_rule.claim_year = summary.summary_year
    where summary.summary_medreimb_ip <> 0 or by_rule.payment_amount is not null
    group by rules.rule

)

select * from compared
order by rule
