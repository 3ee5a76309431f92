-- One row per carrier claim: header columns and totals over its 13 line groups
-- (the lines themselves are in carrier_lines).
-- A view: the typing is stored per bronze batch (models/silver/store), so a build adds only new batches.
{{ config(materialized='view') }}
with staged as (

    select * from {{ ref('stg_carrier_claims') }}

),

final as (

    select
        {{ mapped_columns('carrier_claims') }},
        {{ sum_repeated('carrier_claims', 'LINE_NCH_PMT_AMT_') }} as payment_amount,
        {{ sum_repeated('carrier_claims', 'LINE_BENE_PTB_DDCTBL_AMT_') }} as deductible_amount,
        {{ sum_repeated('carrier_claims', 'LINE_COINSRNC_AMT_') }} as coinsurance_amount,
        {{ sum_repeated('carrier_claims', 'LINE_BENE_PRMRY_PYR_PD_AMT_') }} as primary_payer_paid_amount,
        {{ sum_repeated('carrier_claims', 'LINE_ALOWD_CHRG_AMT_') }} as allowed_charge_amount,
        _source_file,
        _source_line,
        _batch_id
    from staged

)

select * from final
