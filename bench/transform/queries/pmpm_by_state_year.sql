-- Dialect-neutral (DuckDB and Spark SQL). Claims payments per member month by state and year, from silver (as gold.pmpm_by_state_year).
with claims as (
    select desynpuf_id, year(claim_start_date) as claim_year, payment_amount from {inpatient_claims}
    union all
    select desynpuf_id, year(claim_start_date), payment_amount from {outpatient_claims}
    union all
    select desynpuf_id, year(claim_start_date), payment_amount from {carrier_claims}
    union all
    select desynpuf_id, year(service_date), total_rx_cost_amount from {prescription_drug_events}
),
by_year as (
    select desynpuf_id, claim_year, sum(coalesce(payment_amount, 0)) as payment_amount
    from claims group by desynpuf_id, claim_year
),
beneficiary_years as (
    select b.state_code, b.beneficiary_year,
           greatest(coalesce(b.part_a_coverage_months, 0), coalesce(b.part_b_coverage_months, 0)) as member_months,
           coalesce(c.payment_amount, 0) as payment_amount
    from {beneficiary} as b
    left join by_year as c on c.desynpuf_id = b.desynpuf_id and c.claim_year = b.beneficiary_year
)
select state_code, beneficiary_year, sum(member_months) as member_months,
       sum(payment_amount) as claims_payment_amount,
       sum(payment_amount) / nullif(sum(member_months), 0) as claims_pmpm
from beneficiary_years
group by state_code, beneficiary_year
order by state_code, beneficiary_year
