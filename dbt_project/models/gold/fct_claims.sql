-- One row per claim across settings (inpatient, outpatient, carrier, Part D events).
--
-- Rule (split institutional claims): a claim in several segments counts once, as its first
-- segment (SEGMENT 1) says: payment, deductibles, coinsurance, primary payer amount, dates,
-- DRG and provider come from segment 1; later segments add nothing. Silver keeps every
-- segment with its amounts; gold does not add them (tests/reconcile_payments_silver_gold
-- reports them apart). Principal codes: position 1 of the first segment that has one, which
-- on the real rows is always segment 1 (segment 2 rows carry no diagnosis or procedure).
-- Evidence (analyses/split_claim_segments.sql, DE-SynPUF samples 1+2): 11 segment-2
-- inpatient rows against 11,652 segment-1 rows; none has CLM_FROM_DT/CLM_THRU_DT or a
-- diagnosis, all carry DRG OTH/000, and 8 of 11 an admission date before segment 1's. In
-- the 8 beneficiary-years whose only inpatient claim is split, the summary file's
-- MEDREIMB_IP equals segment 1's CLM_PMT_AMT in 6 and is close in 2 (10,500 vs 10,000;
-- 33,100 vs 32,000), never segment 1 + segment 2; BENRES_IP equals segment 1's deductible
-- (not twice it) in all 8. Outpatient (sample 1, analyses/split_claim_segments_outpatient.sql):
-- 106 segment-2 rows, none dated; in all 4 beneficiary-years with a split claim and a
-- summary row, MEDREIMB_OP equals the year's segment-1 payments exactly.
--
-- Rule (year): claim_year is the year of the claim's through date (CLM_THRU_DT, which is
-- the discharge date of every inpatient stay; carrier CLM_THRU_DT; Part D SRVC_DT).
-- Evidence (analyses/claim_year_rule.sql): by through date, 63.35% of beneficiary-years'
-- claim payments equal MEDREIMB_IP exactly, against 61.21% by start or admission date,
-- and every segment-1 dollar falls in a summary year (41 inpatient claims start in 2007;
-- none ends before 2008). Outpatient (sample 1): 226 of 226 beneficiary-years exact by
-- through date, 224 of 228 by start date.
with {{ import_refs(
    inpatient='inpatient_claims',
    outpatient='outpatient_claims',
    carrier='carrier_claims',
    drug_events='prescription_drug_events',
) }},

institutional_segments as (
    {#- inpatient and outpatient segments share their columns; only inpatient has a DRG #}
    {%- for setting, drg_code in [('inpatient', 'drg_code'), ('outpatient', 'cast(null as string)')] %}

    select
        '{{ setting }}' as claim_type,
        claim_id,
        segment,
        desynpuf_id,
        claim_start_date,
        claim_end_date,
        provider_id,
        {{ drg_code }} as drg_code,
        principal_icd9_dgns_cd,
        principal_icd9_prcdr_cd,
        coalesce(payment_amount, 0) as payment_amount,
        coalesce(deductible_amount, 0) + coalesce(coinsurance_amount, 0)
        + coalesce(blood_deductible_amount, 0) as beneficiary_responsibility_amount,
        coalesce(primary_payer_paid_amount, 0) as primary_payer_paid_amount
    from {{ setting }}
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

institutional_claims as (

    {#- every column from the first segment (min_by over segment); count(*) = segments #}
    select
        claim_type,
        claim_id,
        {%- for column in ['desynpuf_id', 'claim_start_date', 'claim_end_date', 'provider_id', 'drg_code'] %}
        min_by({{ column }}, segment) as {{ column }},
        {%- endfor %}
        {#- min_by skips rows whose ordering is null: segments without the code #}
        {%- for code in ['principal_icd9_dgns_cd', 'principal_icd9_prcdr_cd'] %}
        min_by({{ code }}, case when {{ code }} is not null then segment end) as {{ code }},
        {%- endfor %}
        count(*) as segment_count,
    {%- for amount in ['payment_amount', 'beneficiary_responsibility_amount', 'primary_payer_paid_amount'] %}
    min_by({{ amount }}, segment) as {{ amount }}{{ "," if not loop.last }}
    {%- endfor %}
    from institutional_segments
    group by claim_type, claim_id

),

carrier_claims as (

    select
        'carrier' as claim_type,
        claim_id,
        desynpuf_id,
        claim_start_date,
        claim_end_date,
        cast(null as string) as provider_id,
        cast(null as string) as drg_code,
        principal_icd9_dgns_cd,
        cast(null as string) as principal_icd9_prcdr_cd,
        cast(1 as bigint) as segment_count,
        payment_amount,
        deductible_amount + coinsurance_amount as beneficiary_responsibility_amount,
        primary_payer_paid_amount
    from carrier

),

drug_event_claims as (

    -- DE-SynPUF events carry no plan-paid amount: the gross drug cost is the payment
    select
        'pde' as claim_type,
        pde_id as claim_id,
        desynpuf_id,
        service_date as claim_start_date,
        service_date as claim_end_date,
        cast(null as string) as provider_id,
        cast(null as string) as drg_code,
        cast(null as string) as principal_icd9_dgns_cd,
        cast(null as string) as principal_icd9_prcdr_cd,
        cast(1 as bigint) as segment_count,
        coalesce(total_rx_cost_amount, 0) as payment_amount,
        coalesce(patient_pay_amount, 0) as beneficiary_responsibility_amount,
        cast(0 as decimal(12, 2)) as primary_payer_paid_amount
    from drug_events

),

all_claims as (

    select * from institutional_claims
    union all
    select * from carrier_claims
    union all
    select * from drug_event_claims

),

final as (

    select
        concat(claim_type, ':', claim_id) as claim_key,
        claim_type,
        claim_id,
        desynpuf_id,
        claim_start_date,
        claim_end_date,
        year(claim_end_date) as claim_year,
        provider_id,
        drg_code,
        principal_icd9_dgns_cd,
        principal_icd9_prcdr_cd,
        segment_count,
        cast(payment_amount as decimal(18, 2)) as payment_amount,
        cast(beneficiary_responsibility_amount as decimal(18, 2)) as beneficiary_responsibility_amount,
        cast(primary_payer_paid_amount as decimal(18, 2)) as primary_payer_paid_amount
    from all_claims

)

select * from final
