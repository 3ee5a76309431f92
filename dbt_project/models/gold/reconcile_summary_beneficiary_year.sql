-- The summary file against the claims, per beneficiary-year, setting and measure: the
-- summary's annual amounts (MEDREIMB_*, BENRES_*, PPPYMT_* of IP, OP and carrier) next to the
-- claims' totals placed in the same beneficiary-year (beneficiary_year: a claim counts in the
-- year of its through date, a split claim as its segment 1), with their difference
-- (claims - summary) and whether they match to the cent.
-- Measures: medicare_paid = MEDREIMB vs claim payments (CLM_PMT_AMT, carrier line
-- payments); beneficiary_paid = BENRES vs deductibles + coinsurance (+ blood deductible);
-- primary_payer_paid = PPPYMT vs primary payer paid amounts.
-- A row exists only where the summary or the claims hold money (both 0: nothing to
-- reconcile). Claims that no beneficiary-year holds are in reconcile_unplaced_claims.
with {{ import_refs(
    beneficiaries='beneficiary',
    beneficiary_years='beneficiary_year',
) }},

paired as (

    select
        beneficiary_years.desynpuf_id,
        beneficiary_years.beneficiary_year,
        beneficiary_years.state_code,
        stack(
            9,
            {%- for setting, suffix in [('inpatient', 'ip'), ('outpatient', 'op'), ('carrier', 'carrier')] %}
            {%- set outer_last = loop.last %}
        {%- for measure, summary, claims in [
            ('medicare_paid', 'medicare_' ~ suffix ~ '_amount', setting ~ '_payment_amount'),
            ('beneficiary_paid', 'beneficiary_' ~ suffix ~ '_amount', setting ~ '_beneficiary_responsibility_amount'),
            ('primary_payer_paid', 'primary_payer_' ~ suffix ~ '_amount', setting ~ '_primary_payer_paid_amount')] %}
            '{{ setting }}', '{{ measure }}',
            cast(coalesce(beneficiaries.{{ summary }}, 0) as decimal(28, 2)),
            cast(beneficiary_years.{{ claims }} as decimal(28, 2)){{ "," if not (outer_last and loop.last) }}
            {%- endfor %}
            {%- endfor %}
        ) as (setting, measure, summary_amount, claims_amount)
    from beneficiary_years
    inner join beneficiaries
        on beneficiaries.desynpuf_id = beneficiary_years.desynpuf_id
            and beneficiaries.beneficiary_year = beneficiary_years.beneficiary_year

),

final as (

    select
        desynpuf_id,
        beneficiary_year,
        state_code,
        setting,
        measure,
        summary_amount,
        claims_amount,
        claims_amount - summary_amount as difference_amount,
        claims_amount = summary_amount as is_matched
    from paired
    where summary_amount <> 0 or claims_amount <> 0

)

select * from final
