{#
  Publish a gated build: `<layer>.<name>` becomes a view on `<build_schema>.<name>` for
  every relation the build made (one CREATE OR REPLACE VIEW, one metastore update, per
  table). The views in `unpublish` (earlier publishes made them; the build no longer has
  them) are dropped, and so are build schemas (and their _audit schemas) other than those
  in `keep`, and with `stores` (silver), what no kept build reads of the per-batch stores.
  Other views of the schema (the predictions views of models_ml.batch) are left alone.
  Called by cms_pipeline.publish through `dbt run-operation`, from a publish intent: the
  macro may run again on the same arguments after a kill, so every step is idempotent.
#}
{% macro promote_layer(layer, build_schema, relations, keep, unpublish=[], stores=none) %}
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
    {% for name in unpublish if name not in relations %}
        {% call statement('unpublish_' ~ name) %}
            drop view if exists {{ layer }}.{{ name }}
        {% endcall %}
    {% endfor %}
    {% do drop_old_builds(layer, keep) %}
    {% if stores %}{% do prune_silver_stores(**stores) %}{% endif %}
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
            {% do drop_schema_cascade(schema) %}
        {% endif %}
    {% endfor %}
{% endmacro %}

{#
  Drop what no kept build reads of the incremental silver stores (models/silver/store):
  store schemas (`<prefix>*`) other than `keep_stores`, and in those, the partitions of
  bronze batches that no kept build's snapshot lists (e.g. batches replaced by compaction).
  Arguments from cms_pipeline.silver_store.kept.
#}
{% macro prune_silver_stores(prefix, keep_stores, keep_batches) %}
    {% for row in run_query('show schemas') %}
        {% set schema = row[0] | lower %}
        {% if schema.startswith(prefix) and schema not in keep_stores %}
            {% do log("dropping unused silver store " ~ schema, info=true) %}
            {% do drop_schema_cascade(schema) %}
        {% elif schema in keep_stores and var('file_format') == 'parquet' %}
            {# parquet stores only: a Delta table has no metastore partitions to drop #}
            {% for table in run_query('show tables in ' ~ schema) if not table[2] %}
                {% set stale = [] %}
                {% for part in run_query('show partitions ' ~ schema ~ '.' ~ table[1]) %}
                    {% set batch = part[0].split('=', 1)[1] %}
                    {% if batch not in keep_batches %}{% do stale.append(batch) %}{% endif %}
                {% endfor %}
                {% if stale %}
                    {% call statement('prune_' ~ table[1]) %}
                        alter table {{ schema }}.{{ table[1] }} drop if exists
                        {% for b in stale %}partition (_batch_id = '{{ b }}'){{ ", " if not loop.last }}{% endfor %}
                    {% endcall %}
                {% endif %}
            {% endfor %}
        {% endif %}
    {% endfor %}
{% endmacro %}

{# Drop the given schemas and everything in them: the scratch schemas of
   cms_pipeline.publish.unit_test_layer, which nothing reads once its unit tests ran. #}
{% macro drop_scratch_schemas(schemas) %}
    {% for schema in schemas %}
        {% do drop_schema_cascade(schema) %}
    {% endfor %}
{% endmacro %}

{# Drop one schema and everything in it (dbt's own drop_schema takes a relation). #}
{% macro drop_schema_cascade(schema) %}
    {% call statement('drop_' ~ schema) %}
        drop schema if exists {{ schema }} cascade
    {% endcall %}
{% endmacro %}
