{#
  Seeds on the `local` target (dbt-spark's session method): Spark reads the CSV file itself.

  dbt-spark inserts a seed as SQL literals that Jinja renders 10,000 rows at a time; the
  15,000-row ICD-9 vocabularies took 11-15 s each in every silver build (dbt.log, bundled
  samples), most of it rendering. On `local` the SparkSession runs in dbt's process,
  so the file is on its machine: one INSERT ... SELECT from a CSV view takes about 1 s.
  Values keep dbt's seed semantics: an empty cell is null, each column is cast to the type
  dbt chose (column_types or agate's inference). On the other targets (Thrift Server,
  Databricks) the file may not be on the cluster's machines: dbt-spark's own insert runs.
#}
{% macro spark__load_csv_rows(model, agate_table) %}
  {%- if target.name != 'local' -%}
    {{ return(dbt.spark__load_csv_rows(model, agate_table)) }}
  {%- endif -%}
  {%- set column_override = model['config'].get('column_types', {}) -%}
  {%- set file_view = this.identifier ~ '__seed_file' -%}
  {%- set path = model.root_path ~ '/' ~ model.original_file_path -%}
  {%- call statement('seed_file_view') -%}
    create or replace temporary view {{ file_view }}
    using csv
    options (path '{{ path }}', header 'true', inferSchema 'false', escape '"',
             multiLine 'true', mode 'FAILFAST', encoding 'UTF-8')
  {%- endcall -%}
  {%- set sql -%}
    insert into {{ this.render() }}
    select
    {%- for col_name in agate_table.column_names %}
      {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) %}
      cast(nullif(`{{ col_name }}`, '') as {{ type }}){{ "," if not loop.last }}
    {%- endfor %}
    from {{ file_view }}
  {%- endset -%}
  {%- call statement('seed_file_insert') -%}{{ sql }}{%- endcall -%}
  {%- call statement('seed_file_view_drop') -%}drop view if exists {{ file_view }}{%- endcall -%}
  {{ return(sql) }}
{% endmacro %}
