-- Silver = gold to the cent, per claim type, year and amount, both ways (gold short of
-- silver: a negative difference; gold beyond it: a positive one). The comparison ranks
-- silver's segments itself (macros/gold/claim_amounts_silver_gold.sql); bronze = silver per
-- claim type, year and every amount column is the silver build's test
-- reconcile_payments_bronze_silver, which deduplicates bronze on its own. The gold gate
-- fails on any row that is not reconciled (soda_checks/gold/reconcile_claim_amounts.yml).
{{ claim_amounts_silver_gold(
    ref('inpatient_claims'), ref('outpatient_claims'), ref('carrier_claims'),
    ref('prescription_drug_events'), ref('fct_claims')) }}
