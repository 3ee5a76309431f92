-- One row per carrier claim: header columns and totals over its 13 line groups (summed in the store)
-- (the lines themselves are in carrier_lines).
-- A view: the typing is stored per bronze batch (models/silver/store), so a build adds only new batches.
{{ config(materialized='view') }}
with staged as (

    select * from {{ ref('stg_carrier_claims') }}

),

final as (

    select
        {{ mapped_columns('carrier_claims') }},
        payment_amount,
        deductible_amount,
        coinsurance_amount,
        primary_payer_paid_amount,
        allowed_charge_amount,
        _source_file,
        _source_line,
        _batch_id
    from staged

)

select * from final
