{#-
    Generic test: the built table's column types are exactly the `data_type`s its YAML
    declares, precision and scale included. A model's contract (`contract: {enforced: true}`)
    already fails the build when a column is missing, added or of another type, but dbt
    compares types without their size, precision or scale (decimal(18, 2) = decimal(28, 2));
    this test compares the whole type Spark reports (DESCRIBE), so a contracted column whose
    precision changes fails too. Rows returned: one per column that differs.
-#}
{% test contract_column_types(model) %}
{%- set declared = {} -%}
{%- if execute -%}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model' and node.alias == model.identifier -%}
        {%- for name, column in node.columns.items() if column.data_type -%}
            {%- do declared.update({name | lower: column.data_type | replace(' ', '') | lower}) -%}
        {%- endfor -%}
    {%- endfor -%}
{%- endif -%}
{%- set mismatches = [] -%}
{%- if execute -%}
    {%- set built = {} -%}
    {%- for column in adapter.get_columns_in_relation(model) -%}
        {%- do built.update({column.name | lower: column.data_type | replace(' ', '') | lower}) -%}
    {%- endfor -%}
    {%- for name in ((declared.keys() | list) + (built.keys() | list)) | unique -%}
        {%- if declared.get(name) != built.get(name) -%}
            {%- do mismatches.append((name, declared.get(name, 'not declared'), built.get(name, 'not built'))) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif -%}
{%- if mismatches %}
    {%- for name, want, got in mismatches %}
select '{{ name }}' as column_name, '{{ want }}' as declared_type, '{{ got }}' as built_type
        {{- "\nunion all" if not loop.last }}
    {%- endfor %}
{%- else %}
select
    cast(null as string) as column_name,
    cast(null as string) as declared_type,
    cast(null as string) as built_type
where false
{%- endif %}
{% endtest %}
