-- Dialect-neutral (DuckDB and Spark SQL). Top 50 principal diagnoses per claim type by payment, from silver (as gold.top_diagnoses_by_cost).
with principal as (
    select claim_type, claim_id, min_by(icd9_dgns_cd, segment) as icd9_dgns_cd
    from {claim_diagnoses} where diagnosis_position = 1 group by claim_type, claim_id
),
claims as (
    select 'inpatient' as claim_type, claim_id, sum(payment_amount) as payment_amount from {inpatient_claims} group by claim_id
    union all
    select 'outpatient', claim_id, sum(payment_amount) from {outpatient_claims} group by claim_id
    union all
    select 'carrier', claim_id, payment_amount from {carrier_claims}
),
totals as (
    select p.claim_type, p.icd9_dgns_cd, count(*) as claim_count, sum(c.payment_amount) as total_payment_amount
    from principal as p join claims as c on c.claim_type = p.claim_type and c.claim_id = p.claim_id
    group by p.claim_type, p.icd9_dgns_cd
)
select * from (
    select *, row_number() over (partition by claim_type order by total_payment_amount desc, icd9_dgns_cd) as cost_rank
    from totals
) as ranked where cost_rank <= 50
order by claim_type, cost_rank
