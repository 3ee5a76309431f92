-- One row per used line of a carrier claim (the 13 numbered line groups unpivoted): the
-- stored lines (carrier_lines_by_batch) of this build's snapshot, latest delivery of each
-- claim, with the labels of their codes.
{{ config(materialized='view') }}
{%- set keys = ['claim_id', 'desynpuf_id', 'claim_start_date'] %}
with lines as (

    {{ latest_deliveries(
        'carrier_claims', 'carrier_lines_by_batch',
        columns=unpivot_columns('carrier_claims', 'carrier_lines', keys, decode=false) + ['is_allowed']) }}

),

decoded as (

    {{ cms_lookups('lines', cms_mapping('carrier_claims').unpivots['carrier_lines'].columns) }}

)

{#- the store holds the line number as a decimal (see unpivot_from_mapping) #}
{%- set position = cms_mapping('carrier_claims').unpivots['carrier_lines'].position %}

select
{%- for c in unpivot_columns('carrier_claims', 'carrier_lines', keys) + ['is_allowed'] %}
    {{ 'cast(%s as int) as %s' % (c, c) if c == position else c }}{{ "," if not loop.last }}
{%- endfor %}
from decoded
