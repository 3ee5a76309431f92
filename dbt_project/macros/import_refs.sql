{#
  Import CTEs (jaffle-shop style), one per keyword: `name as (select * from ref(model))`.
      with {{ import_refs(admissions='readmission__transfers_merged') }},
  Imports that filter stay written out in the model, where the filter can be read.
#}
{% macro import_refs() -%}
    {%- for name, model in kwargs.items() %}
{{ name }} as (

    select * from {{ ref(model) }}

){{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}
