-- One row per used line of a carrier claim (the 13 numbered line groups unpivoted).
with lines as (

    {{ unpivot_from_mapping('carrier_claims', 'carrier_lines', ['claim_id', 'desynpuf_id', 'claim_start_date']) }}

),

final as (

    select
        *,
        coalesce(line_processing_indicator_code = 'A', false) as is_allowed
    from lines

)

select * from final
