-- Dialect-neutral (DuckDB and Spark SQL). Payments and claim counts per claim type, from the silver tables (as gold.fct_claims).
with institutional as (
    select 'inpatient' as claim_type, claim_id, sum(payment_amount) as payment_amount
    from {inpatient_claims} group by claim_id
    union all
    select 'outpatient', claim_id, sum(payment_amount)
    from {outpatient_claims} group by claim_id
),
all_claims as (
    select * from institutional
    union all
    select 'carrier', claim_id, payment_amount from {carrier_claims}
    union all
    select 'pde', pde_id, coalesce(total_rx_cost_amount, 0) from {prescription_drug_events}
)
select claim_type, count(*) as claims, sum(payment_amount) as payment_amount
from all_claims
group by claim_type
order by claim_type
