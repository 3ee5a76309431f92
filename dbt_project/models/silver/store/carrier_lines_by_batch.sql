-- The used lines of every stored carrier claim (the 13 numbered line groups as rows), for
-- the batches of carrier_claims_by_batch that this store does not hold yet.
{%- set staged -%}
select * from {{ ref('carrier_claims_by_batch') }}
    where {{ batches_not_stored() }}
{%- endset %}
with lines as (

    {{ unpivot_from_mapping(
        'carrier_claims', 'carrier_lines',
        ['claim_id', 'desynpuf_id', 'claim_start_date', '_source_file', '_source_line', '_batch_id'],
        staged=staged, select_per_position=true) }}

),

final as (

    select
        *,
        coalesce(line_processing_indicator_code = 'A', false) as is_allowed,
        '{{ var("build_id", "") }}' as _stored_by_build
    from lines

)

select * from final
