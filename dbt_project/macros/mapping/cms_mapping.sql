{# The expanded mapping of one bronze table (config/mappings/<table>.yaml, compiled into
   cms_mapping_data.sql by `cms-pipeline mappings compile`). #}
{% macro cms_mapping(source_table) %}
    {%- set all_mappings = cms_mapping_data() -%}
    {%- if source_table not in all_mappings -%}
        {{ exceptions.raise_compiler_error(
            "No mapping for bronze." ~ source_table ~ " in macros/mapping/cms_mapping_data.sql: "
            ~ "add config/mappings/" ~ source_table ~ ".yaml, then run `cms-pipeline mappings compile`.") }}
    {%- endif -%}
    {{ return(all_mappings[source_table]) }}
{% endmacro %}

{# Mapped tables that feed one unpivot target (e.g. claim_diagnoses), in name order. #}
{% macro cms_mappings_with_unpivot(target) %}
    {%- set found = [] -%}
    {%- for name, m in cms_mapping_data() | dictsort if target in m.unpivots -%}
        {%- do found.append(m) -%}
    {%- endfor -%}
    {{ return(found) }}
{% endmacro %}

{#
  A CMS text field as its silver type; decodings per config/mappings/README.md.
  Decimals: '0.00', the text of most CMS amounts (unused carrier line groups hold it in all
  their amounts), is answered without parsing it. A text-to-decimal cast parses each value
  as a Java BigDecimal: the carrier line unpivot, whose filter reads 65 amounts of every
  claim, took 43 s at scale 1.0 with plain casts, 30 s with this (same rows and sums).
#}
{% macro cms_cast(expr, type, decode=none) -%}
    {%- if decode == 'flag_1_2' -%} case {{ expr }} when '1' then true when '2' then false end
    {%- elif decode == 'flag_y_0' -%} case {{ expr }} when 'Y' then true when '0' then false end
    {%- elif decode == 'zero_pad_2' -%} lpad(trim({{ expr }}), 2, '0')
    {%- elif decode == 'zero_pad_3' -%} lpad(trim({{ expr }}), 3, '0')
    {%- elif type == 'date' -%} to_date({{ expr }}, 'yyyyMMdd')
    {%- elif type == 'decimal' -%}
        case when {{ expr }} = '0.00' then cast(0 as decimal(12, 2)) else cast({{ expr }} as decimal(12, 2)) end
    {%- elif type in ('int', 'bigint', 'boolean') -%} cast({{ expr }} as {{ type }})
    {%- else -%} {{ expr }}
    {%- endif -%}
{%- endmacro %}

{# Comma-separated silver columns of the table's main model (a code, then its label). #}
{% macro mapped_columns(source_table) -%}
    {%- set m = cms_mapping(source_table) -%}
    {%- set names = [] -%}
    {%- for c in m.columns -%}
        {%- do names.append(c.name) -%}
        {%- if c.lookup %}{% do names.append(c.lookup.name) %}{% endif -%}
    {%- endfor -%}
    {{ names | join(", ") }}
{%- endmacro %}

{# Chronic-condition columns of the beneficiary mapping: [(silver column, CMS code)]. #}
{% macro chronic_condition_columns() %}
    {%- set found = [] -%}
    {%- for c in cms_mapping('beneficiary_summary').columns if c.chronic_condition -%}
        {%- do found.append((c.name, c.chronic_condition)) -%}
    {%- endfor -%}
    {{ return(found) }}
{% endmacro %}
