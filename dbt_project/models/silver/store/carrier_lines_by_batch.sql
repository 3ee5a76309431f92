-- The used lines of every carrier claim (the 13 numbered line groups as rows), typed from
-- the bronze batches that this store does not hold yet. Codes only: the carrier_lines view
-- adds their labels, so the largest model of the layer does not wait for a seed (dbt
-- starts the shallowest nodes first, and a seed parent made it wait 90 s at scale 1.0).
{%- set staged -%}
select {{ cms_typed_columns(cms_mapping('carrier_claims')) }}
from {{ source('bronze', 'carrier_claims') }}
where {{ batches_not_stored() }}
{%- endset %}
with lines as (

    {{ unpivot_from_mapping(
        'carrier_claims', 'carrier_lines',
        ['claim_id', 'desynpuf_id', 'claim_start_date', '_source_file', '_source_line', '_batch_id'],
        staged=staged, select_per_position=true, decode=false) }}

),

final as (

    select
        *,
        coalesce(line_processing_indicator_code = 'A', false) as is_allowed,
        '{{ var("build_id", "") }}' as _stored_by_build
    from lines

)

select * from final
