-- One row per claim across settings (inpatient, outpatient, carrier, Part D events).
-- Institutional claims split into segments count once: amounts summed over segments,
-- dates spanning them, principal codes from the first segment that has one.
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

    select
        claim_type,
        claim_id,
        min_by(desynpuf_id, segment) as desynpuf_id,
        min(claim_start_date) as claim_start_date,
        max(claim_end_date) as claim_end_date,
        min_by(provider_id, segment) as provider_id,
        max_by(drg_code, segment) as drg_code,
        {#- min_by skips rows whose ordering is null: segments without the code #}
        {%- for code in ['principal_icd9_dgns_cd', 'principal_icd9_prcdr_cd'] %}
        min_by({{ code }}, case when {{ code }} is not null then segment end) as {{ code }},
        {%- endfor %}
        count(*) as segment_count,
        sum(payment_amount) as payment_amount,
        sum(beneficiary_responsibility_amount) as beneficiary_responsibility_amount,
        sum(primary_payer_paid_amount) as primary_payer_paid_amount
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
        year(claim_start_date) as claim_year,
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
