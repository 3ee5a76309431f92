-- Reconciliation to the cent, both ways, per claim type, year and amount (payment,
-- beneficiary responsibility, primary payer): gold.fct_claims = silver's first segments,
-- ranked in macros/gold/claim_amounts_silver_gold.sql (not with the model's SQL), plus
-- carrier claims and drug events. Failing rows: the (claim type, year, amount) where gold
-- differs or counts other claims.
{{ claim_amounts_silver_gold(
    ref('inpatient_claims'), ref('outpatient_claims'), ref('carrier_claims'),
    ref('prescription_drug_events'), ref('fct_claims'), where='not is_reconciled') }}
