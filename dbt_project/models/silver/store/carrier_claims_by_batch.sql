-- bronze.carrier_claims typed and decoded per batch, kept across builds (see macros/incremental/batch_store.sql):
-- the header and the codes the claim-level unpivots read, plus the totals of the 13 line
-- groups. The line amounts are typed once, by carrier_lines_by_batch (straight from
-- bronze), and summed here from its rows: casting 65 text amounts is the costliest step of
-- silver, and a line that is left out holds no amount, so the totals are the same.
with claims as (

    {{ stg_by_batch('carrier_claims', keep_repeated=['ICD9_DGNS_CD_', 'HCPCS_CD_']) }}

),

line_totals as (

    select
        _batch_id,
        _source_file,
        _source_line,
        {{ sum_amount('line_payment_amount') }} as payment_amount,
        {{ sum_amount('line_deductible_amount') }} as deductible_amount,
        {{ sum_amount('line_coinsurance_amount') }} as coinsurance_amount,
        {{ sum_amount('line_primary_payer_paid_amount') }} as primary_payer_paid_amount,
        {{ sum_amount('line_allowed_charge_amount') }} as allowed_charge_amount
    from {{ ref('carrier_lines_by_batch') }}
    -- the batches this store lacks: the line store, built first, holds their lines
    where {{ batches_not_stored() }}
    group by _batch_id, _source_file, _source_line

),

final as (

    select
        claims.*,
        coalesce(line_totals.payment_amount, 0) as payment_amount,
        coalesce(line_totals.deductible_amount, 0) as deductible_amount,
        coalesce(line_totals.coinsurance_amount, 0) as coinsurance_amount,
        coalesce(line_totals.primary_payer_paid_amount, 0) as primary_payer_paid_amount,
        coalesce(line_totals.allowed_charge_amount, 0) as allowed_charge_amount
    from claims
    left join line_totals
        on line_totals._batch_id = claims._batch_id
            and line_totals._source_file = claims._source_file
            and line_totals._source_line = claims._source_line

)

select * from final
