{#
  Publish a gated build: `<layer>.<name>` becomes a view on `<build_schema>.<name>` for
  every relation the build made (one CREATE OR REPLACE VIEW, one metastore update, per
  table). Views of the published schema that the build no longer has are dropped, and so
  are build schemas (and their _audit schemas) other than those in `keep`.
  Called by cms_pipeline.publish.promote through `dbt run-operation`.
#}
{% macro promote_layer(layer, build_schema, relations, keep) %}
    {% do adapter.create_schema(api.Relation.create(schema=layer)) %}
    {% for name in relations %}
        {%- set existing = adapter.get_relation(database=none, schema=layer, identifier=name) -%}
        {% if existing is not none and existing.type != 'view' %}
            {# a plain `dbt run` outside the gate left a table here: a view replaces it #}
            {% do adapter.drop_relation(existing) %}
        {% endif %}
        {% call statement('publish_' ~ name) %}
            create or replace view {{ layer }}.{{ name }} as select * from {{ build_schema }}.{{ name }}
        {% endcall %}
    {% endfor %}
    {% for row in run_query('show views in ' ~ layer) %}
        {% if not row[2] and row[1] not in relations %}
            {% call statement('unpublish_' ~ row[1]) %}
                drop view if exists {{ layer }}.{{ row[1] }}
            {% endcall %}
        {% endif %}
    {% endfor %}
    {% do drop_old_builds(layer, keep) %}
{% endmacro %}

{# Drop build schemas of `layer` whose build id is not in `keep`. #}
{% macro drop_old_builds(layer, keep) %}
    {% set prefix = layer ~ '_build_' %}
    {% set keep_schemas = [] %}
    {% for build_id in keep %}
        {# the metastore keeps schema names in lower case #}
        {% do keep_schemas.append((prefix ~ build_id) | lower) %}
        {% do keep_schemas.append((prefix ~ build_id ~ '_audit') | lower) %}
    {% endfor %}
    {% for row in run_query('show schemas') %}
        {% set schema = row[0] | lower %}
        {% if schema.startswith(prefix) and schema not in keep_schemas %}
            {% do log("dropping old build schema " ~ schema, info=true) %}
            {% call statement('drop_' ~ schema) %}
                drop schema if exists {{ schema }} cascade
            {% endcall %}
        {% endif %}
    {% endfor %}
{% endmacro %}
