{#
  Numbered columns -> rows, as declared under `unpivots` in the mapping: one row per
  position whose values are present (a code is not null, or an amount is not 0), with the
  position number kept in the mapping's `position` column. `staged` (SQL) replaces the
  default input, the table's staging model. `decode=false` leaves the codebook labels out
  (cms_lookups), for a model that must not wait for the seeds (see carrier_lines).

  Two plans give the same rows. By default one scan makes a struct per position of every
  row (`lateral view inline`), then keeps the present ones. `select_per_position` makes
  one filtered select per position in a `union all`: each reads only its own columns and
  keeps only present values, but reads the keys again. It pays off when a position has
  many columns: the 13 carrier line groups (10 columns each) at scale 1.0, read from the
  wide typed store that carrier_claims_by_batch was then, took 95 s against 135 s; one
  code per position (claim_diagnoses, claim_hcpcs) took 45 and 59 s against 20 and 22 s.
  Its position is a decimal: Spark writes an integer literal into the code it generates for
  each select, but passes a decimal to it, so the selects share one generated class (with
  spark.sql.codegen.useIdInClassName off, cms_pipeline/spark.py) that the JVM compiles
  once, not once per position (the carrier line store, first run in a new JVM: 77 -> 63 s,
  JIT compile time 72 -> 45 s). Cast it back to int where it is read (carrier_lines).
#}
{% macro unpivot_from_mapping(source_table, target, keys, staged=none, select_per_position=false, decode=true) %}
{%- set m = cms_mapping(source_table) -%}
{%- set u = m.unpivots[target] -%}
with staged as (

    {{ staged or "select * from " ~ ref('stg_' ~ source_table) }}

),

{% if select_per_position -%}
{%- set digits = u.rows | map(attribute='position') | max | string | length -%}
present as (
    {%- for r in u.rows %}

    select
        {%- for k in keys %}
        {{ k }},
        {%- endfor %}
        cast({{ r.position }} as decimal({{ digits }}, 0)) as {{ u.position }}
        {%- for c in u.columns %},
        {{ r['values'][c.name] }} as {{ c.name }}
        {%- endfor %}
    from staged
    where {{ unpivot_present(u.columns, r['values']) }}
    {{ "union all" if not loop.last }}
    {%- endfor %}

),
{%- else -%}
unpivoted as (

    select
        {%- for k in keys %}
        staged.{{ k }},
        {%- endfor %}
        item.*
    from staged
    lateral view inline(array(
        {%- for r in u.rows %}
        named_struct('{{ u.position }}', {{ r.position }}
            {%- for c in u.columns %}, '{{ c.name }}', {{ r['values'][c.name] }}{% endfor %})
            {{- "," if not loop.last }}
        {%- endfor %}
    )) item

),

present as (

    select * from unpivoted
    where {{ unpivot_present(u.columns) }}

),
{%- endif %}

decoded as (

    {{ cms_lookups('present', u.columns if decode else []) }}

)

select * from decoded
{% endmacro %}

{# A position is present when a code is not null or an amount is not 0; `values` maps
   the unpivot's columns to the expressions of one position (default: the columns). #}
{% macro unpivot_present(columns, values=none) -%}
    {%- for c in columns -%}
    {%- set expr = values[c.name] if values else c.name -%}
    {{ " or " if not loop.first }}
    {%- if c.type == 'decimal' %}coalesce({{ expr }}, 0) <> 0
    {%- else %}{{ expr }} is not null{% endif %}
    {%- endfor %}
{%- endmacro %}

{#
  The claim-level union of one unpivot target over every mapped claim table, with
  `claim_type` from the mapping. Tables without segments get segment 1.
#}
{% macro union_unpivots(target) %}
{%- set sources = cms_mappings_with_unpivot(target) -%}
{%- for m in sources %}
{%- set names = m.columns | map(attribute='name') | list %}
select
    '{{ m.claim_type }}' as claim_type,
    claim_id,
    {{ 'segment' if 'segment' in names else '1' }} as segment,
    desynpuf_id,
    claim_start_date,
    {{ m.unpivots[target].position }},
    {%- for c in m.unpivots[target].columns %}
    {{ c.name }}{{ "," if not loop.last }}
    {%- endfor %}
from (
    {{ unpivot_from_mapping(m.source, target, ['claim_id', 'desynpuf_id', 'claim_start_date'] + (['segment'] if 'segment' in names else [])) }}
) as {{ m.source }}_{{ target }}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endmacro %}

{# Output column names of unpivot_from_mapping, in order: keys, position, values, labels
   (when `decode`). #}
{% macro unpivot_columns(source_table, target, keys, decode=true) %}
    {%- set u = cms_mapping(source_table).unpivots[target] -%}
    {%- set names = keys + [u.position] -%}
    {%- for c in u.columns %}{% do names.append(c.name) %}{% endfor -%}
    {%- for c in u.columns if c.lookup and decode %}{% do names.append(c.lookup.name) %}{% endfor -%}
    {{ return(names) }}
{% endmacro %}
