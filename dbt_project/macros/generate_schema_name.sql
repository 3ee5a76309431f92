{#
  Gated builds: while `build_layer` and `build_id` are set, that layer's models go to
  <layer>_build_<build_id>; every other layer resolves to its published schema (`silver`,
  `gold`: views that `promote` points at the last good build). Stored test failures of a
  build go to <layer>_build_<build_id>_audit. Without those vars (a plain `dbt run` or
  `dbt docs generate`), names are the published schemas.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set layer = var('build_layer', '') -%}
    {%- set build_id = var('build_id', '') -%}
    {%- if node.resource_type == 'test' -%}
        {%- if layer and build_id -%}{{ layer }}_build_{{ build_id }}_audit
        {%- else -%}{{ custom_schema_name or 'dbt_test__audit' }}{%- endif -%}
    {%- elif custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif layer and build_id and custom_schema_name | trim == layer -%}
        {{ layer }}_build_{{ build_id }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
