-- One row per beneficiary and year: enrollment, payments by setting from the claims and
-- from the summary file, utilization and chronic conditions.
-- Rule: a claim counts in the year of its through date (fct_claims.claim_year: CLM_THRU_DT,
-- the discharge date of a stay; SRVC_DT for Part D), the rule that matches the summary
-- file's MEDREIMB_IP best on the real samples (fct_claims header,
-- analyses/claim_year_rule.sql). Claims with no summary row for their beneficiary and year
-- are not lost: gold.reconcile_unplaced_claims counts them.
--
-- Rule (member months): a member month is a month with Part A or Part B coverage, up to and
-- including the month of death; Part D member months likewise from PLAN_CVRG_MOS_NUM. The
-- summary file's coverage months do NOT stop at death. Evidence (DE-SynPUF samples 0-2, the
-- summary rows with BENE_DEATH_DT; query in the yml docs): of 302/287/320 beneficiaries who
-- died in 2008/2009/2010, 269/262/288 carry 12 Part A months, and only 47/44/40 have Part A
-- months <= their death month; 255/248/287 have more A/B months than months alive; Part D
-- months: 153/202/229 are 12. No summary row has a death date before its year.
-- Part A and Part B member months are also kept apart (each cut at the death month): the
-- denominators of inpatient (Part A) and outpatient and carrier (Part B) utilisation.
--
-- Rule (admissions): inpatient_admission_count counts hospitalizations of
-- inpatient_admissions (each claim as its segment 1, transfers merged) in the year of their
-- discharge date, the same through-date rule as the claims (a stay's last CLM_THRU_DT).
--
-- Measures kept apart: Medicare paid (claim payments of inpatient, outpatient and carrier
-- claims), beneficiary paid (their deductibles, coinsurance and blood deductible), primary
-- payer paid, and Part D gross drug cost (TOT_RX_CST_AMT, patient pay included) with its
-- patient pay. claims_payment_amount (every claim's payment, Part D gross cost included) is
-- kept for the readers that use it.
with {{ import_refs(
    beneficiaries='beneficiary',
    claims='fct_claims',
    admissions='inpatient_admissions',
) }},

claim_amounts as (

    select
        desynpuf_id,
        claim_year,
        claim_key,
        claim_type,
        claim_start_date,
        claim_end_date,
        {%- for t in ['inpatient', 'outpatient', 'carrier', 'pde'] %}
        {%- for amount in ['payment_amount', 'beneficiary_responsibility_amount', 'primary_payer_paid_amount'] %}
        case when claim_type = '{{ t }}' then {{ amount }} else 0 end as {{ t }}_{{ amount }},
        {%- endfor %}
        {%- endfor %}
        payment_amount
    from claims

),

claims_by_year as (

    select
        desynpuf_id,
        claim_year,
        {%- for t in ['inpatient', 'outpatient', 'carrier', 'pde'] %}
        {%- for amount in ['payment_amount', 'beneficiary_responsibility_amount', 'primary_payer_paid_amount'] %}
        {{ sum_amount(t ~ '_' ~ amount, 'claim_key', 'decimal(28, 2)') }} as {{ t }}_{{ amount }},
        {%- endfor %}
        count_if(claim_type = '{{ t }}') as {{ t }}_claim_count,
        {%- endfor %}
        sum(case when claim_type = 'inpatient'
                then datediff(claim_end_date, claim_start_date)
            else 0
        end) as inpatient_days,
        {{ sum_amount('payment_amount', 'claim_key', 'decimal(28, 2)') }} as claims_payment_amount
    from claim_amounts
    group by desynpuf_id, claim_year

),

admissions_by_year as (

    select
        desynpuf_id,
        discharge_year,
        count(*) as inpatient_admission_count
    from admissions
    group by desynpuf_id, discharge_year

),

enrollment as (

    select
        *,
        -- months alive in the year: through the death month when death falls in the year
        case
            when death_date is null or year(death_date) > beneficiary_year then 12
            when year(death_date) = beneficiary_year then month(death_date)
            else 0
        end as alive_months
    from beneficiaries

),

final as (

    select
        beneficiaries.desynpuf_id,
        beneficiaries.beneficiary_year,
        beneficiaries.age,
        beneficiaries.sex_code,
        beneficiaries.race_code,
        beneficiaries.state_code,
        beneficiaries.state,
        beneficiaries.has_esrd,
        beneficiaries.is_died_in_year,
        beneficiaries.is_alive_at_year_end,
        beneficiaries.part_a_coverage_months,
        beneficiaries.part_b_coverage_months,
        beneficiaries.hmo_coverage_months,
        beneficiaries.part_d_coverage_months,
        beneficiaries.death_date,
        beneficiaries.alive_months,
        -- a member month: a month with Part A or Part B coverage, cut at the death month
        least(beneficiaries.alive_months, greatest(
            coalesce(beneficiaries.part_a_coverage_months, 0),
            coalesce(beneficiaries.part_b_coverage_months, 0)
        )) as member_months,
        least(
            beneficiaries.alive_months,
            coalesce(beneficiaries.part_d_coverage_months, 0)
        ) as part_d_member_months,
        least(
            beneficiaries.alive_months,
            coalesce(beneficiaries.part_a_coverage_months, 0)
        ) as part_a_member_months,
        least(
            beneficiaries.alive_months,
            coalesce(beneficiaries.part_b_coverage_months, 0)
        ) as part_b_member_months,
        {%- for column, code in chronic_condition_columns() %}
        coalesce(beneficiaries.{{ column }}, false) as {{ column }},
        {%- endfor %}
        beneficiaries.chronic_condition_count,
        {%- for t in ['inpatient', 'outpatient', 'carrier', 'pde'] %}
        {%- for amount in ['payment_amount', 'beneficiary_responsibility_amount', 'primary_payer_paid_amount'] %}
        coalesce(claims_by_year.{{ t }}_{{ amount }}, 0) as {{ t }}_{{ amount }},
        {%- endfor %}
        coalesce(claims_by_year.{{ t }}_claim_count, 0) as {{ t }}_claim_count,
        {%- endfor %}
        coalesce(claims_by_year.inpatient_days, 0) as inpatient_days,
        coalesce(admissions_by_year.inpatient_admission_count, 0) as inpatient_admission_count,
        coalesce(claims_by_year.claims_payment_amount, 0) as claims_payment_amount,
        {#- Parts A/B measures: the sum of one amount over inpatient, outpatient and carrier #}
        {%- set ab_measures = [
            ('medicare_paid', 'payment_amount'),
            ('beneficiary_paid', 'beneficiary_responsibility_amount'),
            ('primary_payer_paid', 'primary_payer_paid_amount'),
        ] %}
        {%- for measure, amount in ab_measures %}
        coalesce(claims_by_year.inpatient_{{ amount }}, 0)
        + coalesce(claims_by_year.outpatient_{{ amount }}, 0)
        + coalesce(claims_by_year.carrier_{{ amount }}, 0) as {{ measure }}_amount,
        {%- endfor %}
        coalesce(claims_by_year.pde_payment_amount, 0) as pde_gross_drug_cost_amount,
        coalesce(claims_by_year.pde_beneficiary_responsibility_amount, 0) as pde_patient_pay_amount,
        beneficiaries.medicare_ip_amount as summary_medicare_ip_amount,
        beneficiaries.medicare_op_amount as summary_medicare_op_amount,
        beneficiaries.medicare_carrier_amount as summary_medicare_carrier_amount,
        coalesce(beneficiaries.medicare_ip_amount, 0) + coalesce(beneficiaries.medicare_op_amount, 0)
        + coalesce(beneficiaries.medicare_carrier_amount, 0) as summary_medicare_total_amount,
        coalesce(beneficiaries.beneficiary_ip_amount, 0) + coalesce(beneficiaries.beneficiary_op_amount, 0)
        + coalesce(beneficiaries.beneficiary_carrier_amount, 0) as summary_beneficiary_total_amount
    from enrollment as beneficiaries
    left join claims_by_year
        on claims_by_year.desynpuf_id = beneficiaries.desynpuf_id
            and claims_by_year.claim_year = beneficiaries.beneficiary_year
    left join admissions_by_year
        on admissions_by_year.desynpuf_id = beneficiaries.desynpuf_id
            and admissions_by_year.discharge_year = beneficiaries.beneficiary_year

)

select * from final
