-- Per member per month amounts by state and year. Every PMPM comes with its numerator and
-- denominator, so a reader can recompute it: <measure>_pmpm = <measure>_amount / its months.
-- Rule: Parts A/B measures (Medicare paid, beneficiary paid, each setting's payments, the
-- summary file's reimbursement) are over member_months (A or B coverage, cut at the death
-- month); Part D measures (gross drug cost, patient pay) over part_d_member_months
-- (PLAN_CVRG_MOS_NUM, cut at the death month). Medicare paid and beneficiary paid are
-- separate measures; claims_pmpm (every claim's payment, Part D gross cost included, over
-- A/B months) is kept for earlier readers. Rules and evidence: beneficiary_year's header.
--
-- Utilisation per 1,000 member months, each count with the months it divides by:
-- <count> * 1000 / <months> = <measure>_per_1000_mm. Each setting over the coverage
-- months of the Part that pays for it, cut at the death month: inpatient admissions
-- (transfers merged), inpatient claims and inpatient days over part_a_member_months;
-- outpatient and carrier claims over part_b_member_months; drug events over
-- part_d_member_months. The counts are beneficiary_year's: a claim or drug event in the
-- year of its through date (service date), a split claim once, an admission in the year of
-- its discharge; every event placed in a beneficiary-year counts, as every payment does in
-- the cost PMPMs. Evidence (samples 1 and 2, pmpm_by_state_year's docs): no placed claim
-- falls after its beneficiary's death month; a few fall in beneficiary-years without
-- months of their Part and are counted all the same.
{%- set ab_measures = ['claims_payment', 'medicare_paid', 'beneficiary_paid', 'primary_payer_paid',
    'inpatient_payment', 'outpatient_payment', 'carrier_payment', 'summary_medicare_total'] %}
{%- set d_measures = ['pde_gross_drug_cost', 'pde_patient_pay'] %}
{#- utilisation: (rate name, count column, member months of the Part that pays for it) #}
{%- set utilisation = [
    ('inpatient_admissions', 'inpatient_admission_count', 'part_a_member_months'),
    ('inpatient_claims', 'inpatient_claim_count', 'part_a_member_months'),
    ('inpatient_days', 'inpatient_days', 'part_a_member_months'),
    ('outpatient_claims', 'outpatient_claim_count', 'part_b_member_months'),
    ('carrier_claims', 'carrier_claim_count', 'part_b_member_months'),
    ('drug_events', 'pde_claim_count', 'part_d_member_months'),
] %}
with {{ import_refs(beneficiary_years='beneficiary_year') }},

totals as (

    select
        state_code,
        max(state) as state,
        beneficiary_year,
        count(*) as beneficiary_count,
        sum(member_months) as member_months,
        sum(part_d_member_months) as part_d_member_months,
        sum(part_a_member_months) as part_a_member_months,
        sum(part_b_member_months) as part_b_member_months,
        {%- for rate, events, months in utilisation %}
        sum({{ events }}) as {{ events }},
        {%- endfor %}
        {%- for m in ab_measures + d_measures %}
        sum({{ m }}_amount) as {{ m }}_amount,
        {%- endfor %}
        sum(pde_payment_amount) as pde_payment_amount
    from beneficiary_years
    group by state_code, beneficiary_year

),

final as (

    select
        *,
        {%- for m in ab_measures %}
        cast({{ m }}_amount / nullif(member_months, 0) as decimal(18, 2))
            as {{ m | replace('_payment', '') | replace('_total', '') }}_pmpm,
        {%- endfor %}
        {%- for m in d_measures %}
        cast({{ m }}_amount / nullif(part_d_member_months, 0) as decimal(18, 2)) as {{ m }}_pmpm,
        {%- endfor %}
        -- Part D gross drug cost over Part D months (before: over A/B months)
        cast(pde_payment_amount / nullif(part_d_member_months, 0) as decimal(18, 2)) as pde_pmpm,
    {%- for rate, events, months in utilisation %}
    cast({{ events }} * 1000 / nullif({{ months }}, 0) as decimal(18, 2))
        as {{ rate }}_per_1000_mm{{ "," if not loop.last }}
    {%- endfor %}
    from totals

)

select * from final
